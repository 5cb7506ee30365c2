"""Every fault the suite injects has its figures in docs/faults.json, and the fault table's words
on what a fault costs come from the outcomes recorded there (the table itself is a generated README
block: tests/package/test_readme_blocks.py regenerates it)."""

from __future__ import annotations

import copy
import json
import re

from tests.conftest import REPO
from tests.fixtures.faults import LOST, ORDER, table, what_is_lost

KEPT = REPO / "docs" / "faults.json"


def test_every_fault_of_the_suite_has_kept_figures_and_words() -> None:
    suite = (REPO / "tests" / "hub" / "test_faults.py").read_text()
    recorded = set(re.findall(r'fault_results\.record\(\s*"(\w+)"', suite))
    assert recorded == set(ORDER) == set(LOST)
    assert set(json.loads(KEPT.read_text())["faults"]) == recorded
    assert "what_is_lost=" not in suite  # the words are made from the outcomes, not written in the test


def test_the_work_folder_row_says_what_the_neighbour_and_the_newcomer_could_do() -> None:
    fault = json.loads(KEPT.read_text())["faults"]["learner_fills_work_folder"]
    assert fault["while_full"] == {"neighbour_saved_a_file": "yes", "a_new_learner_logged_in": "yes"}
    said = what_is_lost("learner_fills_work_folder", fault)
    assert "neighbours saved and a newcomer logged in" in said and "failed" not in said
    refused = copy.deepcopy(fault)
    refused["while_full"] = {
        "neighbour_saved_a_file": "no: HTTP 500",
        "a_new_learner_logged_in": "no: timed out",
    }
    said = what_is_lost("learner_fills_work_folder", refused)
    assert "neighbours' saves failed and a newcomer could not log in" in said


def test_the_rush_row_counts_the_starts_taken_over_and_files_lost_are_said() -> None:
    fault = copy.deepcopy(json.loads(KEPT.read_text())["faults"]["hub_killed_during_rush"])
    assert what_is_lost("hub_killed_during_rush", fault) == (
        "nothing: of the 10 starts in flight, 0 adopted and 10 resumed in their place"
    )
    fault["resumed"], fault["ended_working_with_files_intact"] = 8, 9
    assert what_is_lost("hub_killed_during_rush", fault).startswith("2 starts in flight")
    assert what_is_lost("learner_memory_hog", fault).endswith("1 of 10 learners' files not found intact")
    assert "| 9 |" in table({"faults": {"hub_killed_during_rush": fault}})
