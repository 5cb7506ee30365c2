"""Every lesson notebook follows the workshop's conventions (papermill parameters, budgets, the
lesson's ten steps, cleared outputs, data only through the registry)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from dlworkshop.data.registry import load_registry
from dlworkshop.lessons import lessons_dir, list_lessons

STEPS = [
    "Formulate the problem",
    "Identify inputs and outputs",
    "Prepare the data",
    "Choose a pretrained model or build a new architecture",
    "Choose a loss function and optimizer",
    "Train the model",
    "Perform a prediction",
    "Measure performance",
    "Refine the model",
    "Share the model",
]
NOTEBOOKS = sorted(lessons_dir().glob("[0-9]*.ipynb"))


def test_there_is_a_notebook_for_every_episode() -> None:
    assert sorted({lesson.episode for lesson in list_lessons()}) == [1, 2, 3, 4, 5, 6]
    assert len(NOTEBOOKS) == 7


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    path = request.param
    return path, nbformat.read(path, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_valid_and_outputs_cleared(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    _, nb = notebook
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None


def test_first_code_cell_holds_the_papermill_parameters(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    _, nb = notebook
    first = code_cells(nb)[0]
    assert "parameters" in first.metadata.get("tags", [])
    names = set(re.findall(r"^(\w+) = ", first.source, flags=re.MULTILINE))
    assert {"epochs", "subset", "seed", "output_dir"} <= names
    assert not any("parameters" in cell.metadata.get("tags", []) for cell in code_cells(nb)[1:])


def test_metadata_gives_budgets_and_smoke_parameters(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    meta = nb.metadata["dlworkshop"]
    for hardware in ("cpu", "gpu"):
        for size in ("smoke", "full"):
            assert meta["budget_seconds"][hardware][size] > 0
        assert meta["budget_seconds"][hardware]["smoke"] <= meta["budget_seconds"][hardware]["full"]
    parameters = set(re.findall(r"^(\w+) = ", code_cells(nb)[0].source, flags=re.MULTILINE))
    assert set(meta["smoke_parameters"]) <= parameters, (
        f"{path.name} smoke parameters not in its parameters cell"
    )
    registry = load_registry()
    assert set(meta["datasets"]) <= set(registry.datasets)


def test_follows_the_ten_steps_in_order(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    _, nb = notebook
    headings = [
        line.removeprefix("## ").split(". ", 1)[1]
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if re.match(r"^## \d+\. ", line)
    ]
    assert headings == STEPS


def test_data_only_through_the_registry_and_the_model_is_saved(
    notebook: tuple[Path, nbformat.NotebookNode],
) -> None:
    _, nb = notebook
    source = "\n".join(cell.source for cell in code_cells(nb))
    assert not re.search(r"https?://", source), "code must not reach for the network"
    assert "keras.utils.set_random_seed(seed)" in source
    assert re.search(r"\.save\(output / \"[\w-]+\.keras\"\)", source)
    assert "report_loss(" in source
