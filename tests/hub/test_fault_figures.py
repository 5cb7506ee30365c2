"""The README's fault table and its line on where it was measured are the ones the fault suite's
kept figures (docs/faults.json) make, and every fault the suite injects has its figures there."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO
from tests.fixtures.faults import ORDER, measured_on, table

KEPT = REPO / "docs" / "faults.json"


def test_the_readme_quotes_the_kept_figures() -> None:
    figures = json.loads(KEPT.read_text())
    readme = (REPO / "README.md").read_text()
    assert table(figures) in readme, "README: paste `python -m tests.fixtures.faults docs/faults.json`"
    assert measured_on(figures) in " ".join(readme.split()), "README: the figures' measured line"


def test_every_fault_of_the_suite_has_kept_figures() -> None:
    suite = (REPO / "tests" / "hub" / "test_faults.py").read_text()
    recorded = set(re.findall(r'fault_results\.record\(\s*"(\w+)"', suite))
    assert recorded == set(ORDER)
    assert set(json.loads(KEPT.read_text())["faults"]) == recorded
