"""`dlworkshop smoke-test --hub` against the hub `dlworkshop up` started: it passes, it names the
check that fails when the hub is unreachable or the code is wrong, and its report opens in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fixtures.hub import RunningHub
from tests.fixtures.smoke import report_of, smoke_test

pytestmark = [pytest.mark.docker, pytest.mark.hub]


def test_the_hub_passes_the_smoke_test_with_every_episode(running_hub: RunningHub, tmp_path: Path) -> None:
    """Every episode, the ones reading Keras' own caches too: the test hub hands every learner the
    test-only Keras hash override through resources.extra_mounts and extra_env."""
    result = smoke_test(
        "--hub",
        running_hub.url,
        "--size",
        "smoke",
        "-c",
        str(running_hub.config_path),
        "--report",
        str(tmp_path),
        timeout=3600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checks = [check["check"] for check in report_of(tmp_path)["checks"]]
    assert checks[:2] == ["login", "spawn"] and "GPU quota assigned" in checks
    episodes = [check.removeprefix("episode ") for check in checks if check.startswith("episode ")]
    assert episodes == [path.stem for path in sorted((REPO / "lessons").glob("*.ipynb"))]
    # The smoke-test learner's server was stopped again.
    import httpx

    assert running_hub.url and httpx.get(f"{running_hub.url}/hub/api", timeout=10).status_code == 200


def test_an_unreachable_hub_fails_the_login_check(running_hub: RunningHub, tmp_path: Path) -> None:
    result = smoke_test(
        "--hub", "http://127.0.0.1:9", "-c", str(running_hub.config_path), "--report", str(tmp_path)
    )
    assert result.returncode == 1 and "not ready: login failed" in result.stderr
    assert "hub unreachable" in report_of(tmp_path)["checks"][0]["measured"]


def test_a_wrong_access_code_fails_the_login_check(running_hub: RunningHub, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(running_hub.config_path.read_text().replace(running_hub.access_code, "not-the-code"))
    result = smoke_test("--hub", running_hub.url, "-c", str(wrong), "--report", str(tmp_path / "report"))
    assert result.returncode == 1 and "not ready: login failed" in result.stderr
    assert "refused" in report_of(tmp_path / "report")["checks"][0]["measured"]
    assert "Traceback" not in result.stderr


def test_the_html_report_opens_in_chromium(running_hub: RunningHub, tmp_path: Path) -> None:
    from dlworkshop.clients.smoke.checks import CheckResult
    from dlworkshop.clients.smoke.report import write_report
    from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS

    files = write_report(
        [
            CheckResult("login", True, "0.1 s"),
            CheckResult("episode 01-introduction", True, "9 s", "60 s", seconds=9, budget_seconds=60),
        ],
        tmp_path,
        f"hub {running_hub.url}",
        "smoke",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(files["html"].as_uri())
        assert page.locator("table tr").count() == 3
        assert page.locator("img").evaluate("img => img.naturalWidth") > 100
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
