"""What `dlworkshop up` tells its user, whole and exact, without an engine: the closing message at
any width (piped output is 80 columns to rich), a socket this user may not open told apart from an
engine that does not run, and root asked for before anything is touched."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from dlworkshop.cli.hub import announce, how_to_log_in
from dlworkshop.errors import WorkshopError
from dlworkshop.image.docker import engine_unreachable
from dlworkshop.settings import load_settings

LONG = """\
workshop: {name: "Introduction to deep learning, autumn school of the faculty of natural sciences"}
auth: {mode: shared-code, access_code: a-rather-long-workshop-code-2026, admins: [instructor]}
hub: {public_url: "https://deep-learning-workshop.hpc.example-university.org/with/a/long/path"}
"""
# The lines as `up` prints them where output is not a terminal, every word in place.
EXPECTED = [
    "Introduction to deep learning, autumn school of the faculty of natural sciences",
    "The workshop hub is up at https://deep-learning-workshop.hpc.example-university.org/with/a/long/path",
    "Learners: open it, type the workshop code a-rather-long-workshop-code-2026, a name and a secret "
    "of their own (the first login claims the name; later logins need the same secret).",
    "Admins: claim your names first with `dlworkshop accounts claim NAME`.",
]


def test_the_closing_message_is_whole_when_piped(tmp_path: Path) -> None:
    """`up`'s own console, its stdout a pipe, as in a log or CI: one line each, nothing cut."""
    config = tmp_path / "workshop.yaml"
    config.write_text(LONG)
    code = (
        "from dlworkshop.cli.hub import announce, console\n"
        "from pathlib import Path\n"
        "from dlworkshop.settings import load_settings\n"
        f"settings = load_settings(Path({str(config)!r}))\n"
        "announce(console, settings, settings.hub.url)\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "FORCE_COLOR")}
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert printed.stdout.splitlines() == EXPECTED


@pytest.mark.parametrize("width", [40, 80, 200])
def test_in_a_terminal_the_panel_wraps_between_words_and_keeps_every_word(width: int, tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(LONG)
    settings = load_settings(config)
    terminal = Console(force_terminal=True, width=width, soft_wrap=True, color_system=None)
    with terminal.capture() as captured:
        announce(terminal, settings, settings.hub.url)
    inside = [line.strip("│╭╮╰╯─ ") for line in captured.get().splitlines()]
    words = " ".join(" ".join(inside).split())
    title, _ = how_to_log_in(settings, settings.hub.url)
    assert title == EXPECTED[0]
    for line in EXPECTED[1:]:
        # A word longer than the panel is folded where it must be; every other word is whole.
        if all(len(word) < width - 4 for word in line.split()):
            assert line in words, (line, captured.get())


def test_a_socket_this_user_may_not_open_is_not_called_a_stopped_engine() -> None:
    # What the Docker SDK raises for a socket of mode 0660 root:docker, opened by someone else.
    detail = (
        "Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))"
    )
    error = engine_unreachable(detail)
    assert "may not open the Docker engine's socket" in error.message
    assert "not running" not in error.message
    assert error.fix is not None and "docker group" in error.fix and "newgrp docker" in error.fix
    assert "sudo" in error.fix


def test_no_engine_at_the_socket_is_a_stopped_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    error = engine_unreachable("FileNotFoundError(2, 'No such file or directory')")
    assert error.message.startswith("the Docker engine is not running")
    assert "/nonexistent/docker.sock" in error.message
    assert error.fix is not None and "systemctl start docker" in error.fix


@pytest.mark.parametrize("command", ["up", "down"])
def test_up_and_down_ask_for_root_before_touching_anything(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dlworkshop.local import local_hub

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    # Were it to go on, the engine would be asked next: it must not be.
    monkeypatch.setattr(local_hub, "docker_client", lambda: pytest.fail("the engine was asked"))
    settings = load_settings(None)
    quiet = Console(file=io.StringIO())
    with pytest.raises(WorkshopError) as refused:
        if command == "up":
            local_hub.up(settings, quiet)
        else:
            local_hub.down(settings, purge=False, console=quiet)
    assert f"`dlworkshop {command}` needs root" in refused.value.message
    assert "iptables" in refused.value.message and "losetup" in refused.value.message
    assert refused.value.fix is not None and "sudo --preserve-env=DLWORKSHOP_ACCESS_CODE" in refused.value.fix
