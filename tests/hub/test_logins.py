"""Workshop logins without a hub: claimed names (shared-code), the classroom rate limit, accounts.

The authenticators run as JupyterHub calls them (`authenticate(handler, form)`); a refused login
is the HTTP 403 whose message JupyterHub's login form shows. Delays are recorded, never slept.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tornado import web

from dlworkshop.accounts import hash_password, pbkdf2_hash
from dlworkshop.errors import ConfigError
from dlworkshop.settings import parse_settings
from hub.auth import AccountsAuthenticator, SharedCodeAuthenticator
from hub.claims import ClaimBook
from hub.claims import main as claims_main
from hub.login_limits import LoginLimiter

CODE = "open-sesame"
ROOM = "10.0.0.9"  # a classroom behind one NAT: every learner's address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Held:
    """Records how long each refused answer was held, instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def limiter(per_name: int = 5, per_address: int = 30, clock: Clock | None = None) -> LoginLimiter:
    return LoginLimiter(per_name, per_address, clock=clock or Clock(), sleep=Held())


def handler(address: str = ROOM, users: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(request=SimpleNamespace(remote_ip=address), find_user=(users or {}).get)


def shared(tmp_path: Path, **options: Any) -> SharedCodeAuthenticator:
    options.setdefault("limiter", limiter())
    return SharedCodeAuthenticator(
        access_code=CODE,
        claims_file=str(tmp_path / "claims.json"),
        seats_file=str(tmp_path / "seats.json"),
        **options,
    )


def login(auth: Any, name: str, secret: str = "", code: str = CODE, at: Any = None) -> Any:
    return asyncio.run(
        auth.authenticate(at or handler(), {"username": name, "password": code, "secret": secret})
    )


def refused(auth: Any, name: str, secret: str = "", code: str = CODE, at: Any = None) -> str:
    with pytest.raises(web.HTTPError) as refusal:
        login(auth, name, secret, code, at)
    assert refusal.value.status_code == 403
    return refusal.value.log_message % refusal.value.args


# ---- names are claimed ------------------------------------------------------------------------


def test_the_first_login_claims_a_name_and_later_logins_need_its_secret(tmp_path: Path) -> None:
    auth = shared(tmp_path)
    assert login(auth, "ada", "1234") == {"name": "ada", "auth_state": {"display_name": "ada"}}
    assert login(auth, "Ada ", "1234")["name"] == "ada"  # the name as typed, normalised
    # The probe of issue 14: someone else's name with the workshop code no longer logs in as them.
    assert "taken, and that is not its secret" in refused(auth, "ada", "4321")
    assert "taken" in refused(auth, "ada")  # the code alone is not enough
    assert "not the workshop code" in refused(auth, "ada", "1234", code="wrong")


def test_the_secret_is_stored_hashed_on_the_hub_volume_and_survives_a_restart(tmp_path: Path) -> None:
    login(shared(tmp_path), "grace", "hopper-1906")
    book = tmp_path / "claims.json"
    assert stat.S_IMODE(book.stat().st_mode) == 0o600
    assert "hopper-1906" not in book.read_text()
    assert json.loads(book.read_text())["grace"]["secret"].startswith("scrypt$")
    restarted = shared(tmp_path)  # a new hub process reads the book from the volume
    assert login(restarted, "grace", "hopper-1906")["name"] == "grace"
    assert "taken" in refused(restarted, "grace", "guess")


def test_a_name_claimed_before_the_cheaper_hash_still_logs_in(tmp_path: Path) -> None:
    """A claims book written by an older hub (PBKDF2) keeps its names: the stored hash says how."""
    ClaimBook(tmp_path / "claims.json").claim("grace", pbkdf2_hash("hopper-1906", iterations=1000))
    auth = shared(tmp_path)
    assert login(auth, "grace", "hopper-1906")["name"] == "grace"
    assert "taken" in refused(auth, "grace", "hopper-1907")


@pytest.mark.parametrize(
    ("name", "secret", "says"),
    [
        ("ada", "", "choose a secret of at least 4"),
        ("ada", "123", "choose a secret of at least 4"),
        ("seat-01", "1234", "belong to the hub's own servers"),
        ("../etc", "1234", "letters, digits"),
        ("instructor", "1234", "`dlworkshop accounts claim instructor`"),
    ],
)
def test_what_cannot_be_claimed_at_the_form(tmp_path: Path, name: str, secret: str, says: str) -> None:
    auth = shared(tmp_path, admin_users={"instructor"})
    assert says in refused(auth, name, secret)
    assert ClaimBook(tmp_path / "claims.json").names() == []


def test_an_admin_claims_their_name_outside_the_form_and_then_logs_in(tmp_path: Path) -> None:
    auth = shared(tmp_path, admin_users={"instructor"})
    book = str(tmp_path / "claims.json")
    assert claims_main(["--file", book, "claim", "instructor", hash_password("teach-42")]) == 0
    assert login(auth, "instructor", "teach-42")["name"] == "instructor"
    assert claims_main(["--file", book, "claim", "instructor", hash_password("x" * 8)]) == 3  # taken


def test_on_the_hubs_host_an_admin_claims_by_typing_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker exec -it <hub> python -m hub.claims claim NAME`: asked twice, only the hash kept."""
    typed = iter(["teach-42", "teach-42", "abc", "teach-42", "teach-43"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    book = str(tmp_path / "claims.json")
    assert claims_main(["--file", book, "claim", "instructor"]) == 0
    assert claims_main(["--file", book, "claim", "helper"]) == 2  # too short
    assert claims_main(["--file", book, "claim", "helper"]) == 2  # typed differently
    assert next(typed, None) is None  # both asked twice, the short one once
    auth = shared(tmp_path, admin_users={"instructor", "helper"})
    assert login(auth, "instructor", "teach-42")["name"] == "instructor"
    assert "teach-42" not in (tmp_path / "claims.json").read_text()


def test_release_frees_the_name_for_a_new_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    auth = shared(tmp_path)
    login(auth, "bo", "first-secret")
    book = str(tmp_path / "claims.json")
    # `dlworkshop accounts release bo` runs this in the hub container, while the hub runs.
    assert claims_main(["--file", book, "release", "bo"]) == 0
    assert "released bo" in capsys.readouterr().out
    assert login(auth, "bo", "new-secret")["name"] == "bo"  # the running hub sees the release
    assert "taken" in refused(auth, "bo", "first-secret")
    assert claims_main(["--file", book, "release", "nobody"]) == 3
    assert "nobody is not claimed" in capsys.readouterr().out
    assert claims_main(["--file", book, "list"]) == 0 and capsys.readouterr().out.split() == ["bo"]


def test_two_first_logins_under_one_name_claim_it_once(tmp_path: Path) -> None:
    auth = shared(tmp_path)

    async def both() -> list[Any]:
        attempts = [
            auth.authenticate(handler(address), {"username": "cy", "password": CODE, "secret": secret})
            for address, secret in (("10.0.0.1", "mine-1"), ("10.0.0.2", "mine-2"))
        ]
        return await asyncio.gather(*attempts, return_exceptions=True)

    outcomes = asyncio.run(both())
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert sum(isinstance(o, web.HTTPError) for o in outcomes) == 1


def test_claims_and_prewarmed_seats_together(tmp_path: Path) -> None:
    ready = SimpleNamespace(spawner=SimpleNamespace(ready=True))
    room = handler(users={"seat-01": ready, "seat-02": ready})
    auth = shared(tmp_path, seats=2)
    # The claim maps the name to a seat; the name typed goes with it, for JupyterLab to show.
    assert login(auth, "dana", "pin-7788", at=room) == {
        "name": "seat-01",
        "auth_state": {"display_name": "dana"},
    }
    assert login(auth, "erin", "pin-1122", at=room)["name"] == "seat-02"
    assert "taken" in refused(auth, "dana", "pin-1122", at=room)  # erin cannot open dana's seat
    assert "hub's own servers" in refused(auth, "seat-01", "pin-1122", at=room)
    restarted = shared(tmp_path, seats=2)
    assert login(restarted, "dana", "pin-7788", at=room)["name"] == "seat-01"


def test_accounts_are_checked_against_their_hashes(tmp_path: Path) -> None:
    sheet = tmp_path / "accounts.csv"
    sheet.write_text(f"username,password_hash\nlearner01,{hash_password('amber-birch-042')}\n")
    auth = AccountsAuthenticator(accounts_file=str(sheet), limiter=limiter())
    assert asyncio.run(auth.authenticate(handler(), {"username": "learner01", "password": "amber-birch-042"}))
    with pytest.raises(web.HTTPError, match="403"):
        asyncio.run(auth.authenticate(handler(), {"username": "learner01", "password": "amber-birch-043"}))


# ---- rate limiting that fits a classroom --------------------------------------------------------


def test_thirty_logins_from_one_address_fifteen_wrong(tmp_path: Path) -> None:
    """Half the room mistypes once, all at once, from one address well past its ceiling: every
    correct login succeeds without waiting, every wrong one is answered (no lockout), the failures
    past the address's ceiling are held, and a name hammered with wrong secrets is held longer
    each time, yet still opens with its secret."""
    held = Held()
    auth = shared(tmp_path, limiter=LoginLimiter(5, 10, clock=Clock(), sleep=held))
    names = [f"learner-{index:02d}" for index in range(15)]
    for name in names:
        login(auth, name, f"secret-{name}")  # the names were claimed earlier in the day

    async def the_room() -> list[Any]:
        attempts = []
        for index, name in enumerate(names):
            wrong = {"password": "wrong-code"} if index % 2 else {"secret": "not-mine"}
            attempts.append({"username": name, "password": CODE, "secret": "", **wrong})
            attempts.append({"username": name, "password": CODE, "secret": f"secret-{name}"})
        return await asyncio.gather(
            *(auth.authenticate(handler(), form) for form in attempts), return_exceptions=True
        )

    outcomes = asyncio.run(the_room())
    correct, wrong = outcomes[1::2], outcomes[0::2]
    assert [o["name"] if isinstance(o, dict) else o for o in correct] == names
    assert all(isinstance(o, web.HTTPError) and o.status_code == 403 for o in wrong)
    assert len(held.delays) == 15  # only failures are ever held
    assert held.delays[:10] == [0.0] * 10 and all(d >= 1 for d in held.delays[10:])

    held.delays.clear()
    for _ in range(8):
        refused(auth, "learner-00", "guess")
    assert held.delays == sorted(held.delays) and held.delays[-1] > held.delays[0] >= 1
    assert held.delays[-1] == 30  # at most half a minute: a delay, never a lockout
    assert login(auth, "learner-00", "secret-learner-00")["name"] == "learner-00"


def test_a_mistyping_learner_gets_a_few_free_tries_then_growing_delays() -> None:
    clock = Clock()
    room = LoginLimiter(3, 30, clock=clock)
    assert [room.failed(ROOM, "ada") for _ in range(6)] == [0, 0, 0, 1, 2, 4]
    assert room.failed(ROOM, "bo") == 0  # another name from the same address is not held
    clock.now += 61  # failures count for a minute
    assert room.failed(ROOM, "ada") == 0
    room.succeeded(ROOM, "ada")
    assert room.failures(ROOM, "ada") == (0, 1)  # the address's count stays


def test_past_the_address_ceiling_every_failure_from_it_is_held() -> None:
    room = LoginLimiter(5, 4, clock=Clock())
    assert [room.failed(ROOM, f"name-{index}") for index in range(6)] == [0, 0, 0, 0, 1, 1]
    assert room.failed("10.0.0.10", "name-0") == 0  # another address is not
    assert room.delay(ROOM, "fresh-name") == 0  # and a name that has not failed never waits


def test_attempts_under_one_name_take_turns_so_parallel_guessing_waits(tmp_path: Path) -> None:
    """A held failure holds the name's next attempt: guesses sent together are answered one after
    the other, each after its delay."""
    order: list[str] = []

    async def slow(seconds: float) -> None:
        order.append(f"held {seconds:g}")
        await asyncio.sleep(0)

    auth = shared(tmp_path, limiter=LoginLimiter(1, 30, clock=Clock(), sleep=slow))
    login(auth, "ada", "right-secret")

    async def guesses() -> None:
        forms = [{"username": "ada", "password": CODE, "secret": f"guess-{n}"} for n in range(3)]
        await asyncio.gather(*(auth.authenticate(handler(), f) for f in forms), return_exceptions=True)

    asyncio.run(guesses())
    assert order == ["held 0", "held 1", "held 2"]


def test_the_settings_keep_the_address_ceiling_above_the_names() -> None:
    base = "auth: {mode: shared-code, access_code: x, login_attempts_per_minute: 8"
    assert parse_settings(base + "}\n").auth.login_attempts_per_minute_per_address == 30
    with pytest.raises(ConfigError) as problem:
        parse_settings(base + ", login_attempts_per_minute_per_address: 4}\n")
    assert "must be at least login_attempts_per_minute" in problem.value.problems[0]


# ---- the admin's commands, where they fail before reaching a hub ----------------------------------


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_releasing_a_name_outside_shared_code_mode_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text("auth: {mode: github, github: {client_id: a, client_secret: b}}\n")
    result = cli("accounts", "release", "ada", "-c", str(config))
    assert result.returncode != 0 and "names are claimed only in shared-code mode" in result.stderr
    assert "Traceback" not in result.stderr


def test_releasing_through_a_hubs_api_needs_an_admins_token_and_the_hub(tmp_path: Path) -> None:
    no_token = cli("accounts", "release", "ada", "--hub", "http://127.0.0.1:9", DLWORKSHOP_HUB_TOKEN="")
    assert (
        no_token.returncode != 0 and "needs an admin's API token in $DLWORKSHOP_HUB_TOKEN" in no_token.stderr
    )
    nowhere = cli("accounts", "names", "--hub", "http://127.0.0.1:9", DLWORKSHOP_HUB_TOKEN="t0ken")
    assert nowhere.returncode != 0 and "hub unreachable at http://127.0.0.1:9" in nowhere.stderr
    assert "Traceback" not in no_token.stderr + nowhere.stderr
