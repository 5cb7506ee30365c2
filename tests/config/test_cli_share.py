"""`dlworkshop share` refuses before copying anything, with the same message for the hub on this
machine and a deployed one (only the command that applies workshop.yaml differs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.hub import dlworkshop

CONFIG = "auth: {{mode: shared-code, access_code: x}}\nresources: {{shared_folder: {shared}}}\n"


def share(tmp_path: Path, shared: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "workshop.yaml"
    config.write_text(CONFIG.format(shared=shared))
    return dlworkshop("share", "-c", str(config), *args)


@pytest.mark.parametrize(
    ("where", "bring_up"), [([], "dlworkshop up"), (["-i", "hosts.yml"], "dlworkshop deploy")]
)
def test_a_hub_without_a_shared_folder_is_refused_naming_the_setting(
    tmp_path: Path, where: list[str], bring_up: str
) -> None:
    (tmp_path / "notes.md").write_text("notes")
    result = share(tmp_path, "false", str(tmp_path / "notes.md"), *where)
    assert result.returncode != 0
    assert "resources.shared_folder is off for this hub" in result.stderr
    assert f"set resources.shared_folder: true and run `{bring_up}` again" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", [[], ["-i", "hosts.yml"]])
def test_a_missing_path_is_refused_before_anything_is_copied(tmp_path: Path, where: list[str]) -> None:
    result = share(tmp_path, "true", str(tmp_path / "nowhere.ipynb"), *where)
    assert result.returncode != 0
    assert f"{tmp_path / 'nowhere.ipynb'}: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
