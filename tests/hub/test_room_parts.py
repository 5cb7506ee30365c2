"""The room view, the end of the workshop and the helpers, without a hub: the state each learner
is shown in, stops and culls remembered across a restart, the request log's lines, the roles and
scopes the hub is configured with, and logins once the workshop is over (hub/room.py,
hub/closing.py, hub/auth.py, hub/config.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from traitlets.config import Config

from dlworkshop import contract
from dlworkshop.accounts import hash_password
from dlworkshop.settings import parse_settings
from hub import config as hub_config
from hub.backends.base import LearnerUsage
from hub.closing import DEFAULT_NOTICE, Closing, refuse_after_the_end
from hub.closing import main as closing_main
from hub.room import Room, room_for
from hub.room_rows import StopBook, kernel_counts, memory_facts, merged, server_state, server_usage, totals
from hub.state import HubState
from tests.hub.test_logins import login, refused, shared

BASE = "auth: {mode: shared-code, access_code: open-sesame, admins: [instructor], helpers: [hana]}\n"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("pending", "phase", "ready", "stop", "state"),
    [
        ("spawn", "queued", False, None, "queued"),
        ("spawn", "starting", False, None, "starting"),
        ("spawn", "answering", False, None, "starting"),
        (None, "", True, None, "running"),
        ("stop", "", False, None, "stopping"),
        (None, "", False, (NOW, False), "stopped"),
        (None, "", False, (NOW, True), "culled"),
        (None, "", False, None, "not started"),
        # A new start after a cull is a start, whatever the book says.
        ("spawn", "queued", False, (NOW, True), "queued"),
    ],
)
def test_each_learner_is_shown_in_the_state_of_their_server(
    pending: str | None, phase: str, ready: bool, stop: Any, state: str
) -> None:
    assert server_state(pending, phase, ready, stop) == state


def test_a_stop_is_a_cull_only_when_the_culler_asked_for_it_then(tmp_path: Path) -> None:
    book = StopBook(tmp_path / contract.STOPS_FILE)
    book.culled("ada", NOW)
    book.stopped("ada", NOW + timedelta(seconds=3))
    book.stopped("bo", NOW)
    assert book.last("ada") == (NOW + timedelta(seconds=3), True)
    assert book.last("bo") == (NOW, False)
    assert book.last("cy") is None
    # Ada starts again and stops her own server an hour later: stopped, not culled.
    book.stopped("ada", NOW + timedelta(hours=1))
    assert book.last("ada") == (NOW + timedelta(hours=1), False)
    # A restarted hub reads the same book from its volume.
    assert StopBook(tmp_path / contract.STOPS_FILE).last("bo") == (NOW, False)


def test_totals_count_states_and_free_start_places() -> None:
    people = [{"state": s} for s in ("queued", "queued", "starting", "running", "culled", "not started")]
    counted = totals(people, capacity=2, starting=1, free_seats=3)
    assert counted["queued"] == 2 and counted["starting"] == 1 and counted["running"] == 1
    assert counted["culled"] == 1 and counted["not_started"] == 1 and counted["stopped"] == 0
    assert counted["free_start_places"] == 1 and counted["start_capacity"] == 2
    assert counted["free_seats"] == 3 and counted["people"] == 6


def test_kernels_are_counted_busy_or_idle() -> None:
    kernels = [{"execution_state": "busy"}, {"execution_state": "idle"}, {"execution_state": "starting"}]
    assert kernel_counts(kernels) == {"busy": 1, "idle": 2}
    assert kernel_counts({}) is None  # not a Jupyter server's answer


class Logged:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.log = SimpleNamespace(info=lambda message, *args: self.lines.append(message % args))


def request_to(
    room: Room, method: str, path: str, status: int, who: Any, db: Any = None, **args: str
) -> Logged:
    logged = Logged()
    handler = SimpleNamespace(
        request=SimpleNamespace(method=method, path=path, remote_ip="10.0.0.9"),
        get_status=lambda: status,
        _jupyterhub_user=who,
        get_argument=lambda name, default=None: args.get(name, default),
        db=db,
        log=logged.log,
    )
    room._note(handler)
    return logged


def test_the_log_names_the_helper_and_the_learner_whose_server_they_open(tmp_path: Path) -> None:
    settings = parse_settings(BASE)
    room = Room(settings, tmp_path / "stops.json", tmp_path / "closed.json", tmp_path / "seats.json")
    (tmp_path / "seats.json").write_text(json.dumps({"ada": "seat-03"}))
    db = orm.new_session_factory("sqlite://")()
    learner, helper = orm.User(name="seat-03"), orm.User(name="hana")
    client = orm.OAuthClient(identifier="jupyterhub-user-seat-03")
    db.add_all([learner, helper, client])
    db.commit()
    db.add(orm.Spawner(user=learner, name="", oauth_client_id=client.identifier))
    db.commit()
    authorize = "/hub/api/oauth2/authorize"
    logged = request_to(room, "GET", authorize, 302, helper, db, client_id=client.identifier)
    assert len(logged.lines) == 1
    line = logged.lines[0]
    assert "helper hana opened the server of ada (seat-03)" in line and "10.0.0.9" in line
    # The learner opening their own server, and a confirmation page not yet answered, log nothing more.
    assert request_to(room, "GET", authorize, 302, learner, db, client_id=client.identifier).lines == []
    assert request_to(room, "GET", authorize, 200, helper, db, client_id=client.identifier).lines == []


def test_the_culler_stopping_a_server_is_noted_as_a_cull(tmp_path: Path) -> None:
    room = Room(
        parse_settings(BASE), tmp_path / "stops.json", tmp_path / "closed.json", tmp_path / "seats.json"
    )
    culler = orm.Service(name=contract.CULLER_SERVICE)
    request_to(room, "DELETE", "/hub/api/users/ada/server", 204, culler)
    room.record_stop(SimpleNamespace(name="", user=SimpleNamespace(name="ada")))
    room.record_stop(SimpleNamespace(name="", user=SimpleNamespace(name="bo")))
    assert room.stops.last("ada")[1] is True  # type: ignore[index]
    assert room.stops.last("bo")[1] is False  # type: ignore[index]


def test_configuring_twice_gives_the_same_room_and_jupyterhub_may_copy_it(tmp_path: Path) -> None:
    import copy

    settings = parse_settings(BASE)
    assert room_for(settings, tmp_path) is room_for(settings, tmp_path)
    assert copy.deepcopy(room_for(settings, tmp_path)) is room_for(settings, tmp_path)


def state_with_room(tmp_path: Path) -> HubState:
    return HubState(
        data=tmp_path, proxy_token="p", prewarm_token="q", auth_state_key="ab" * 32, room_token="r"
    )


def test_helpers_see_the_room_and_open_servers_without_being_admins(tmp_path: Path) -> None:
    c = Config()
    hub_config.configure(c, parse_settings(BASE), state_with_room(tmp_path))
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    helper = roles[contract.HELPER_ROLE]
    assert helper["users"] == ["hana"]
    assert {"access:servers", "read:users"} <= set(helper["scopes"])
    assert not any(scope.startswith("admin:") for scope in helper["scopes"])
    viewers = roles[contract.ROOM_ROLE]
    assert viewers["scopes"] == [contract.ROOM_SCOPE]
    assert viewers["users"] == ["hana", "instructor"] and viewers["services"] == [contract.ROOM_SERVICE]
    assert contract.ROOM_SCOPE in c.JupyterHub.custom_scopes
    room = next(s for s in c.JupyterHub.services if s["name"] == contract.ROOM_SERVICE)
    assert room == {"name": contract.ROOM_SERVICE, "api_token": "r"}
    routes = [route for route, *_ in c.JupyterHub.extra_handlers]
    assert routes == [
        f"/api/{contract.ROOM_API}",
        f"/api/{contract.learner.HUB_STARTS_API}",  # a learner's server asks before its kernel ahead
        f"/api/{contract.ROOM_API}/close",
    ]
    assert c.JupyterHub.tornado_settings["log_function"].__func__ is Room.log_request
    assert c.Spawner.post_stop_hook.__func__ is Room.record_stop
    assert c.RateLimitedAuthenticator.helper_users == {"hana"}
    assert c.RateLimitedAuthenticator.closed_file == str(tmp_path / contract.CLOSED_FILE)


def test_github_helpers_are_let_in_and_refused_after_the_end(tmp_path: Path) -> None:
    settings = parse_settings(
        "auth: {mode: github, github: {client_id: a, client_secret: b, allowed_organizations: [org]},"
        " helpers: [hana]}\nworkshop: {start: 2020-06-01T09:00:00, end: 2020-06-01T17:00:00}\n"
    )
    c = Config()
    hub_config.configure(c, settings, state_with_room(tmp_path))
    assert c.GitHubOAuthenticator.allowed_users == {"hana"}
    assert c.RateLimitedAuthenticator.workshop_end == "2020-06-01T17:00:00"
    hook = c.Authenticator.post_auth_hook
    from tornado import web

    with pytest.raises(web.HTTPError, match="ended"):  # that day is over
        hook(None, None, {"name": "ada"})
    assert hook(None, None, {"name": "hana"}) == {"name": "hana"}


def test_the_workshop_closes_at_its_end_or_when_an_admin_closes_it(tmp_path: Path) -> None:
    marker = tmp_path / contract.CLOSED_FILE
    end = datetime(2026, 12, 1, 17, 0)
    before = Closing(
        marker,
        end,
        "Zips at https://uni.example/ws",
        frozenset({"instructor"}),
        clock=lambda _: end - timedelta(minutes=1),
    )
    assert before.closed() is None and before.refusal("ada") is None
    after = Closing(
        marker, end, "Zips at https://uni.example/ws", frozenset({"instructor"}), clock=lambda _: end
    )
    refusal = after.refusal("ada")
    assert (
        refusal is not None and "2026-12-01 17:00" in refusal and "Zips at https://uni.example/ws" in refusal
    )
    assert after.refusal("instructor") is None  # staff still log in
    # An admin closes early, with a message of their own.
    closing = Closing(marker, None, DEFAULT_NOTICE, frozenset())
    closing.close("Your work: ask Ada for the USB stick.")
    assert "ask Ada for the USB stick" in (closing.refusal("bo") or "")
    assert oct(marker.stat().st_mode & 0o777) == "0o600"
    assert closing.reopen() and closing.refusal("bo") is None
    assert not closing.reopen()


def test_the_close_command_in_the_hub_container_writes_the_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / contract.CLOSED_FILE
    assert closing_main(["--file", str(marker), "close", "--message", "See the course page."]) == 0
    assert "logins are refused" in capsys.readouterr().out
    assert json.loads(marker.read_text())["message"] == "See the course page."
    assert closing_main(["--file", str(marker), "reopen"]) == 0
    assert not marker.exists()


def test_after_the_close_learners_are_refused_before_any_name_is_claimed(tmp_path: Path) -> None:
    marker = tmp_path / contract.CLOSED_FILE
    Closing(marker).close("Your zip is on the course page.")
    auth = shared(tmp_path, closed_file=str(marker), admin_users={"instructor"}, helper_users={"hana"})
    said = refused(auth, "newcomer", "a-secret")
    assert "ended" in said and "Your zip is on the course page." in said
    assert auth.claims.names() == []  # nothing claimed, and not counted as a failed login
    assert auth.limiter.sleep.delays == []  # type: ignore[attr-defined]


def test_helpers_names_are_claimed_like_admins_and_never_get_a_seat(tmp_path: Path) -> None:
    auth = shared(tmp_path, admin_users={"instructor"}, helper_users={"hana"}, seats=2)
    # Whoever typed a helper's name first would see every learner's server.
    assert "instructor's name" in refused(auth, "hana", "a-secret")
    auth.claims.claim("hana", hash_password("hana-secret"))  # `dlworkshop accounts claim hana`
    ready = SimpleNamespace(spawner=SimpleNamespace(ready=True))
    at = SimpleNamespace(
        request=SimpleNamespace(remote_ip="10.0.0.9"),
        find_user=lambda name: ready if name.startswith("seat") else None,
    )
    # A helper keeps their own name (their role is the name's); a learner gets a ready seat.
    assert login(auth, "hana", "hana-secret", at=at)["name"] == "hana"
    assert login(auth, "ada", "ada-secret", at=at)["name"] == "seat-01"


def test_refuse_after_the_end_leaves_failed_github_logins_alone(tmp_path: Path) -> None:
    hook = refuse_after_the_end(Closing(tmp_path / "closed.json", datetime(2000, 1, 1)))
    assert hook(None, None, None) is None


def test_the_servers_own_account_fills_in_where_the_engine_measured_nothing() -> None:
    said = server_usage({"rss": 300 * 2**20, "cpu_percent": 24.0, "limits": {"memory": {"rss": 2**30}}})
    assert said == LearnerUsage(cpu_used=0.24, memory_used=300 * 2**20, memory_limit=2**30)
    assert server_usage({"message": "not found"}) is None
    engine = LearnerUsage(cpu_limit=0.25, memory_limit=2**30, gpu_devices=("gpu-0",), work_bytes=5)
    figures, measured = merged(engine, said)
    assert measured == "server" and figures is not None
    assert (figures.cpu_used, figures.cpu_limit, figures.memory_used) == (0.24, 0.25, 300 * 2**20)
    assert figures.gpu_devices == ("gpu-0",) and figures.work_bytes == 5  # what only the engine knows
    measuring = LearnerUsage(cpu_used=0.2, cpu_limit=0.25, memory_used=1, memory_limit=2)
    assert merged(measuring, said) == (measuring, "engine")
    assert merged(None, None) == (None, None)


def test_a_work_folder_on_a_device_is_sized_by_the_server_where_the_engine_cannot() -> None:
    """Docker's volume sizes leave out volumes with mount options: a quota's work folder is one."""
    said = server_usage({"rss": 1, "cpu_percent": 0.0, "disk_used": 7 * 2**20, "disk_total": 2**28})
    assert said is not None and said.work_bytes == 7 * 2**20
    measuring = LearnerUsage(cpu_used=0.2, cpu_limit=0.25, memory_used=1, memory_limit=2)
    figures, measured = merged(measuring, said)
    assert measured == "engine" and figures == LearnerUsage(0.2, 0.25, 1, 2, work_bytes=7 * 2**20)
    sized = LearnerUsage(cpu_used=0.2, work_bytes=5)
    assert merged(sized, said) == (sized, "engine")  # the engine's own size first
    engine_blind = LearnerUsage(cpu_limit=0.25)
    assert merged(engine_blind, said)[0].work_bytes == 7 * 2**20  # type: ignore[union-attr]
    files = (Path("stops.json"), Path("closed.json"), Path("seats.json"))
    assert Room(parse_settings(BASE), *files).work_folder_from_server
    assert not Room(parse_settings(BASE + "resources: {disk: null}\n"), *files).work_folder_from_server


def test_the_room_asks_each_server_for_its_memory_kills_and_open_notebooks(tmp_path: Path) -> None:
    """The learner image's server extension (dlworkshop_learner/memory.py) answers at
    /api/dlworkshop/memory; an image without it (404: None) leaves the facts unknown."""
    import asyncio

    room = Room(parse_settings(BASE), tmp_path / "s", tmp_path / "c", tmp_path / "seats")
    answers = {
        "kernels": [{"execution_state": "busy"}],
        contract.learner.MEMORY_API: {
            "limit": 2**30,
            "usage": 5,
            "peak": 900 * 2**20,
            "oom_kills": 1,
            "notebooks": [{"path": "04-dollar-street.ipynb", "state": "busy"}],
        },
        "metrics/v1": {"rss": 700 * 2**20, "cpu_percent": 50.0},
    }
    asked: list[str] = []

    async def fake_ask(user: Any, spawner: Any, path: str) -> Any:
        asked.append(path)
        return answers.get(path)

    room._ask = fake_ask  # type: ignore[method-assign]
    kernels, said, memory = asyncio.run(room.ask_server(None, None, measure=False))
    assert kernels == {"busy": 1, "idle": 0} and said is None
    assert memory == {
        "memory_kills": 1,
        "memory_peak": 900 * 2**20,
        "notebooks": [{"path": "04-dollar-street.ipynb", "state": "busy"}],
    }
    assert asked == ["kernels", contract.learner.MEMORY_API]
    del answers[contract.learner.MEMORY_API]
    _, said, memory = asyncio.run(room.ask_server(None, None, measure=True))
    assert said is not None and said.memory_used == 700 * 2**20
    assert memory == memory_facts(None) == {"memory_kills": None, "memory_peak": None, "notebooks": None}
