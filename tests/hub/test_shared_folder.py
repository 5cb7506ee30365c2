"""`dlworkshop share`: the instructor's material reaches every learner at once, in
~/work/shared, without restarting anything, and no learner can change it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.hub import RunningHub, dlworkshop
from tests.hub.learner_kernels import learner_kernel

pytestmark = [pytest.mark.docker, pytest.mark.hub]

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
TRY_TO_WRITE = """
for path in ("shared/notebook.ipynb", "shared/mine.txt"):
    try:
        open(path, "w")
    except OSError as error:
        print(type(error).__name__, error.strerror)
"""


def test_shared_material_reaches_a_running_kernel_at_once_and_learners_cannot_change_it(
    running_hub: RunningHub, tmp_path: Path
) -> None:
    kernel = learner_kernel(running_hub, "share-ada")
    assert "notebook.ipynb" not in kernel.run("import os; print(os.listdir('shared'))")
    notebook = tmp_path / "notebook.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "episode-02.py").write_text("print('solved')\n")
    shared = dlworkshop("share", "-c", str(running_hub.config_path), str(notebook), str(solutions))
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert "~/work/shared/notebook.ipynb" in shared.stdout
    # The same kernel, started before the material was shared, sees it.
    listing = kernel.run(
        "print(sorted(os.listdir(os.path.expanduser('~/work/shared'))), os.listdir('shared/solutions'))"
    )
    assert listing.strip() == "['notebook.ipynb', 'solutions'] ['episode-02.py']"
    assert json.loads(kernel.run("print(open('shared/notebook.ipynb').read())")) == NOTEBOOK
    assert kernel.run(TRY_TO_WRITE).splitlines() == [
        "PermissionError Permission denied",
        "PermissionError Permission denied",
    ]
    # JupyterLab saving into it is told the same.
    learner = running_hub.login("share-ada")
    saved = learner.server_api(
        "share-ada",
        "PUT",
        "/api/contents/shared/notebook.ipynb",
        json={"type": "notebook", "format": "json", "content": NOTEBOOK},
    )
    assert saved.status_code == 403 and "Permission denied" in saved.text
    kernel.stop()


def test_sharing_again_replaces_a_file_learners_see(running_hub: RunningHub, tmp_path: Path) -> None:
    kernel = learner_kernel(running_hub, "share-bo")
    handout = tmp_path / "handout.txt"
    for version in ("first", "second"):
        handout.write_text(version)
        assert dlworkshop("share", "-c", str(running_hub.config_path), str(handout)).returncode == 0
        assert kernel.run("print(open('shared/handout.txt').read())").strip() == version
    kernel.stop()


def test_sharing_with_no_hub_running_is_one_clear_error(running_hub: RunningHub, tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(
        running_hub.config_path.read_text().replace(
            running_hub.settings.hub.container_name, "dlw-no-such-hub"
        )
    )
    (tmp_path / "a.txt").write_text("a")
    result = dlworkshop("share", "-c", str(config), str(tmp_path / "a.txt"))
    assert result.returncode == 2 and "no hub container dlw-no-such-hub" in result.stderr
    assert "Traceback" not in result.stderr
