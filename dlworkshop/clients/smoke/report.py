"""The smoke test's report: a terminal table, and a folder with JSON, HTML and a bar chart."""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dlworkshop.clients.smoke.checks import CheckResult
from dlworkshop.needs import mib


def memory_text(result: CheckResult) -> str:
    """An episode's memory: the container's peak so far against its quota, and the measured need."""
    memory = result.memory or {}
    if not memory:
        return ""
    peak = memory.get("container_peak_bytes") or memory.get("kernel_peak_bytes")
    parts = [f"peak {mib(peak)}" if peak else "peak not measured"]
    if memory.get("limit_bytes"):
        parts.append(f"quota {mib(memory['limit_bytes'])}")
    parts.append(f"needs {mib(memory['need_bytes'])}" if memory.get("need_bytes") else "need not measured")
    return ", ".join(parts)


def table(results: list[CheckResult]) -> Table:
    view = Table("check", "result", "measured", "budget", "memory", title="dlworkshop smoke test")
    for result in results:
        view.add_row(
            result.check,
            "[green]pass[/]" if result.passed else "[red]FAIL[/]",
            result.measured,
            result.budget,
            memory_text(result),
        )
    return view


def chart(results: list[CheckResult], path: Path) -> Path | None:
    """Each episode's training time against its budget."""
    episodes = [r for r in results if r.budget_seconds is not None and r.seconds is not None]
    if not episodes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.check.removeprefix("episode ") for r in episodes]
    figure, axes = plt.subplots(figsize=(max(6, 1.3 * len(episodes)), 4))
    positions = range(len(episodes))
    axes.bar(
        [p - 0.2 for p in positions],
        [r.seconds or 0.0 for r in episodes],
        width=0.4,
        label="measured",
        color=["#2a9d8f" if r.passed else "#e63946" for r in episodes],
    )
    axes.bar(
        [p + 0.2 for p in positions],
        [r.budget_seconds or 0.0 for r in episodes],
        width=0.4,
        label="budget",
        color="#adb5bd",
    )
    axes.set_xticks(list(positions), names, rotation=20, ha="right")
    axes.set_ylabel("seconds")
    axes.set_title("Episode time against budget")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(results: list[CheckResult], folder: Path, target: str, size: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    passed = all(r.passed for r in results)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = {
        "target": target,
        "size": size,
        "when": when,
        "passed": passed,
        "checks": [r.as_dict() for r in results],
    }
    json_path = folder / "report.json"
    json_path.write_text(json.dumps(data, indent=2))
    png = chart(results, folder / "chart.png")
    rows = "\n".join(
        f"<tr class={'pass' if r.passed else 'fail'}><td>{html.escape(r.check)}</td>"
        f"<td>{'pass' if r.passed else 'FAIL'}</td><td>{html.escape(r.measured)}</td><td>{html.escape(r.budget)}</td>"
        f"<td>{html.escape(memory_text(r))}</td></tr>"
        for r in results
    )
    image = (
        f'<img alt="episode times against budgets" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
        if png
        else ""
    )
    html_path = folder / "report.html"
    html_path.write_text(
        "<!doctype html><meta charset=utf-8><title>dlworkshop smoke test</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:.3em .8em}.pass td:nth-child(2){color:#2a9d8f}.fail td:nth-child(2){color:#e63946;font-weight:bold}</style>"
        f"<h1>Smoke test: {'ready' if passed else 'NOT ready'}</h1><p>{html.escape(target)}, size {size}, {when}</p>"
        f"<table><tr><th>check</th><th>result</th><th>measured</th><th>budget</th><th>memory</th></tr>{rows}</table>{image}",
        encoding="utf-8",
    )
    files = {"json": json_path, "html": html_path}
    if png:
        files["png"] = png
    return files


def print_summary(console: Console, results: list[CheckResult], files: dict[str, Path]) -> None:
    console.print(table(results))
    console.print("report: " + ", ".join(str(path) for path in files.values()))
