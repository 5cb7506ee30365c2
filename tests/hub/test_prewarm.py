"""Pre-warming: whose servers, when, and seats handed out at first login."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from dlworkshop import contract
from dlworkshop.errors import ConfigError
from dlworkshop.settings import parse_settings
from hub import config as hub_config
from hub.prewarm import prewarm, prewarm_names, report, seconds_until_prewarm
from hub.seats import SeatBook, seat_count
from hub.state import HubState

SHARED = "auth: {mode: shared-code, access_code: open-sesame}\n"


def test_shared_code_prewarms_seats_for_the_learners_expected() -> None:
    settings = parse_settings(SHARED + "learners: {count: 30, expected_concurrent: 20}\n")
    assert seat_count(settings) == 20
    assert prewarm_names(settings)[:2] == ["seat-01", "seat-02"] and len(prewarm_names(settings)) == 20
    assert seat_count(parse_settings(SHARED + "learners: {count: 5}\nprewarm: {seats: 2}\n")) == 2


def test_known_names_are_prewarmed_by_name_and_need_no_seats() -> None:
    settings = parse_settings(SHARED + "learners: {names: [ada, bo]}\n")
    assert prewarm_names(settings) == ["ada", "bo"] and seat_count(settings) == 0


def test_accounts_mode_prewarms_every_account(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("username,password_hash\nlearner01,x\nlearner02,y\n")
    settings = parse_settings(
        f"auth: {{mode: accounts, accounts_file: {accounts}}}\nlearners: {{count: 2}}\n"
    )
    assert prewarm_names(settings, accounts) == ["learner01", "learner02"]


UTC = timezone.utc


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 12, 1, 8, 0, tzinfo=UTC), 40 * 60.0),  # 09:00 minus 20 minutes is 08:40
        (datetime(2026, 12, 1, 8, 50, tzinfo=UTC), 0.0),  # late: pre-warm at once
        (datetime(2026, 12, 1, 9, 30, tzinfo=UTC), None),  # begun: learners start their own
    ],
)
def test_prewarm_time_is_start_minus_the_margin(now: datetime, expected: float | None) -> None:
    settings = parse_settings(SHARED + "learners: {count: 4}\nworkshop: {start: 2026-12-01T09:00:00+00:00}\n")
    assert seconds_until_prewarm(settings, now) == expected


def test_a_start_without_offset_is_local_time() -> None:
    settings = parse_settings(SHARED + "learners: {count: 4}\nworkshop: {start: 2026-12-01T09:00:00}\n")
    assert seconds_until_prewarm(settings, datetime(2026, 12, 1, 8, 30)) == 10 * 60.0


def test_no_start_schedules_nothing() -> None:
    assert seconds_until_prewarm(parse_settings(SHARED + "learners: {count: 4}\n"), datetime.now(UTC)) is None


def test_a_margin_longer_than_the_culler_timeout_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(
            SHARED
            + "learners: {count: 4}\nworkshop: {start: 2026-12-01T09:00:00}\n"
            + "prewarm: {minutes_before: 90}\nculling: {idle_timeout: 3600}\n"
        )
    assert any("culling.idle_timeout" in problem for problem in refused.value.problems)


def test_seats_go_to_first_logins_and_stay_theirs(tmp_path: Path) -> None:
    book = SeatBook(tmp_path / "seats.json", 3)
    ready = {"seat-01": False, "seat-02": True, "seat-03": True}.__getitem__
    assert book.claim("ada", ready) == "seat-02"  # seat-01's server is not up: skipped
    assert book.claim("bo", ready) == "seat-03"
    assert book.claim("ada", ready) == "seat-02"
    assert book.claim("cy", ready) == "cy"  # none left ready: an ordinary start
    reopened = SeatBook(tmp_path / "seats.json", 3)  # after a hub restart
    assert reopened.claim("bo", lambda seat: False) == "seat-03"


class FakeHub:
    def __init__(self, running: set[str], failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.running, self.failing, self.started = set(running), set(failing), []  # type: ignore[var-annotated]

    def server(self, name: str, create_user: bool = False) -> dict | None:  # type: ignore[type-arg]
        if name in self.running:
            return {"ready": True}
        if name in self.started and name not in self.failing:
            self.running.add(name)  # ready at the next look
            return {"ready": False}
        return None

    def start(self, name: str) -> None:
        self.started.append(name)


def test_prewarm_starts_only_what_is_not_running_and_reports_failures() -> None:
    hub = FakeHub(running={"seat-01"}, failing={"seat-03"})
    outcomes = prewarm(hub, ["seat-01", "seat-02", "seat-03"], timeout=30, say=lambda _: None)  # type: ignore[arg-type]
    assert sorted(hub.started) == ["seat-02", "seat-03"]
    states = {o.name: o.state for o in outcomes}
    assert states["seat-01"] == "already running" and states["seat-02"] == "ready"
    assert states["seat-03"].startswith("failed")
    assert [o.name for o in outcomes if o.failed] == ["seat-03"]
    table = report(outcomes)
    assert "Pre-warmed servers" in table and "seat-03" in table


def test_the_hub_registers_the_prewarm_service_and_seats(tmp_path: Path) -> None:
    from traitlets.config import Config

    c = Config()
    settings = parse_settings(SHARED + "learners: {count: 6}\nworkshop: {start: 2026-12-01T09:00:00}\n")
    state = HubState.load(tmp_path)
    hub_config.configure(c, settings, state, settings_file=tmp_path / "w.yaml")
    services = {service["name"]: service for service in c.JupyterHub.services}
    # names: shared-code mode; room: `dlworkshop status` inside the hub container.
    assert set(services) == {"idle-culler", "prewarm", "names", "room"}
    assert services["prewarm"]["command"][-2:] == ["hub.prewarm", "--scheduled"]
    assert services["prewarm"]["environment"] == {
        "DLWORKSHOP_CONFIG": str(tmp_path / "w.yaml"),
        # Inside the hub's container or pod: Z2JH's hub NetworkPolicy closes the hub's Service to it.
        "JUPYTERHUB_API_URL": contract.HUB_API_URL_LOCAL,
    }
    assert services["prewarm"]["api_token"] == state.prewarm_token
    assert (tmp_path / "prewarm_token").stat().st_mode & 0o777 == 0o600
    assert c.SharedCodeAuthenticator.seats == 6
    without_start = Config()
    hub_config.configure(without_start, parse_settings(SHARED + "learners: {count: 6}\n"), state)
    prewarm_service = next(s for s in without_start.JupyterHub.services if s["name"] == "prewarm")
    assert "command" not in prewarm_service  # token only, for `dlworkshop prewarm`


def test_an_unreachable_hub_api_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.prewarm import main

    config = tmp_path / "workshop.yaml"
    config.write_text(SHARED + "learners: {count: 2}\n")
    monkeypatch.setenv("DLWORKSHOP_CONFIG", str(config))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "token")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")  # nothing listens there
    assert main(["--now", "--timeout", "5"]) == 1
    out = capsys.readouterr().out
    assert "prewarm: the hub's API at http://127.0.0.1:9/hub/api failed" in out and "Traceback" not in out
