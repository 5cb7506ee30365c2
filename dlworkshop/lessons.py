"""The lesson notebooks: where they are, their metadata (episode, datasets, time budgets), and a
papermill runner reused by the tests and the smoke test."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dlworkshop.contract import learner

Hardware = Literal["cpu", "gpu"]
Size = Literal["smoke", "full"]
LOSS_LINE = re.compile(r"loss: (?P<first>[0-9.eE+-]+) -> (?P<last>[0-9.eE+-]+)")


def lessons_dir() -> Path:
    """$DLWORKSHOP_LESSONS, else this checkout's lessons/, else the copy baked into the image."""
    if os.environ.get(learner.LESSONS_ENV):
        return Path(os.environ[learner.LESSONS_ENV])
    repo_copy = Path(__file__).resolve().parent.parent / "lessons"
    return repo_copy if repo_copy.is_dir() else Path(learner.LESSONS_DIR)


@dataclass(frozen=True)
class Lesson:
    path: Path
    episode: int
    title: str
    datasets: list[str]
    budget_seconds: dict[str, dict[str, float]]
    smoke_parameters: dict[str, Any] = field(default_factory=dict)
    # Measured memory and CPU per variant and size (dlworkshop/needs.py; benchmarks/episode_needs.py).
    needs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    def budget_for(self, hardware: Hardware, size: Size) -> float:
        return float(self.budget_seconds[hardware][size])

    def parameters_for(self, size: Size) -> dict[str, Any]:
        return dict(self.smoke_parameters) if size == "smoke" else {}


def read_lesson(path: Path) -> Lesson:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    meta = notebook.get("metadata", {}).get("dlworkshop", {})
    return Lesson(
        path=path,
        episode=int(meta.get("episode", 0)),
        title=str(meta.get("title", path.stem)),
        datasets=list(meta.get("datasets", [])),
        budget_seconds=meta.get("budget_seconds", {}),
        smoke_parameters=meta.get("smoke_parameters", {}),
        needs=meta.get("needs", {}),
    )


def list_lessons(root: Path | None = None) -> list[Lesson]:
    """Every lesson notebook, in episode order."""
    folder = root or lessons_dir()
    return sorted((read_lesson(p) for p in folder.glob("[0-9]*.ipynb")), key=lambda lesson: lesson.path.name)


@dataclass
class LessonRun:
    lesson: Lesson
    seconds: float
    cell_seconds: list[float]
    losses: list[tuple[float, float]]
    output_notebook: Path

    @property
    def loss_went_down(self) -> bool:
        return bool(self.losses) and all(last < first for first, last in self.losses)


def loss_lines(notebook: dict[str, Any]) -> list[tuple[float, float]]:
    """The `loss: A -> B` lines training cells print, as (first, last) pairs."""
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            found += [(float(m["first"]), float(m["last"])) for m in LOSS_LINE.finditer(text)]
    return found


def run_lesson(
    lesson: Lesson,
    size: Size,
    output_dir: Path,
    *,
    kernel_name: str = "python3",
    timeout: float | None = None,
    extra_parameters: dict[str, Any] | None = None,
) -> LessonRun:
    """Execute a lesson with papermill in a fresh kernel (the caller's environment, so data roots
    and thread settings apply); at smoke size with its smoke parameters."""
    import papermill

    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / lesson.path.name
    parameters = {**lesson.parameters_for(size), "output_dir": str(output_dir), **(extra_parameters or {})}
    started = time.monotonic()
    result = papermill.execute_notebook(
        str(lesson.path),
        str(output),
        parameters=parameters,
        kernel_name=kernel_name,
        cwd=str(output_dir),
        progress_bar=False,
        execution_timeout=timeout,
    )
    seconds = time.monotonic() - started
    cell_seconds = [
        float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
        for cell in result["cells"]
    ]
    return LessonRun(lesson, seconds, cell_seconds, loss_lines(result), output)
