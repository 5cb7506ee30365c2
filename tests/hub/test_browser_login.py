"""A learner's morning, in a real browser: the login form says how names are claimed; log in
(claiming a name), land in JupyterLab, open the penguins notebook, run it, see its output. Someone
else typing that name with the workshop code is refused, and the form says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.hub import RunningHub

pytestmark = [pytest.mark.docker, pytest.mark.hub, pytest.mark.browser]


def test_a_learner_logs_in_opens_the_penguins_notebook_and_runs_it(
    running_hub: RunningHub,
    browser,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{running_hub.url}/hub/login")
        explainer = page.locator("#login_explainer").inner_text()
        assert "First time: choose a name and a secret" in explainer
        assert "Later: the same name and secret" in explainer
        assert page.get_by_text("Workshop code", exact=True).is_visible()
        assert page.locator("label[for=secret_input]").inner_text().startswith("Your secret")
        page.fill("#username_input", "browser-ada")
        page.fill("#password_input", running_hub.access_code)
        page.fill("#secret_input", running_hub.secret_of("browser-ada"))
        page.click("#login_submit")
        page.wait_for_url("**/user/browser-ada/lab**", timeout=180_000)
        page.goto(f"{running_hub.url}/user/browser-ada/lab/tree/lessons/02-penguins.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_selector("text=saved and reloaded", timeout=300_000)
        assert page.locator("text=went down").count() >= 1
    except Exception:
        # What the learner's server said, for whoever reads the failure.
        print(running_hub.container("browser-ada").logs(tail=80).decode(errors="replace"))
        raise
    finally:
        page.screenshot(path=str(tmp_path / "penguins.png"), full_page=True)
        page.close()


def test_someone_else_typing_a_claimed_name_is_told_why_they_are_refused(
    running_hub: RunningHub,
    browser,  # type: ignore[no-untyped-def]
) -> None:
    running_hub.login("browser-grace").close()  # grace claimed her name this morning
    context = browser.new_context()  # another learner's browser
    page = context.new_page()
    try:
        page.goto(f"{running_hub.url}/hub/login")
        page.fill("#username_input", "browser-grace")
        page.fill("#password_input", running_hub.access_code)
        page.fill("#secret_input", "not-graces")
        page.click("#login_submit")
        page.wait_for_selector(".login_error")
        assert "browser-grace is taken, and that is not its secret" in page.inner_text(".login_error")
        assert "/hub/login" in page.url
        assert page.input_value("#username_input") == "browser-grace"
    finally:
        context.close()
