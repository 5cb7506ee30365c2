"""Issue 14's login probes against the shared test hub (`dlworkshop up`, shared-code mode), each
asserting the fixed behaviour: a name is its claimer's, a room behind one address is not locked
out by its mistypes, and an admin releases a forgotten name. Every test here, like every client of
the test run, reaches the hub from one address: the classroom behind one NAT. Names are unique to
this module (the hub is shared by all hub tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dlworkshop.hubclient import HubClient, HubError
from tests.fixtures.hub import RunningHub, dlworkshop

pytestmark = [pytest.mark.docker, pytest.mark.hub]


def refusal(running_hub: RunningHub, name: str, secret: str, code: str | None = None) -> str:
    with HubClient(running_hub.url) as client, pytest.raises(HubError) as refused:
        client.login(name, running_hub.access_code if code is None else code, secret)
    return refused.value.message


def test_typing_someone_elses_name_with_the_code_does_not_log_in_as_them(running_hub: RunningHub) -> None:
    with running_hub.login("claim-ada") as ada:  # her first login claims the name
        assert ada.whoami()["name"] == "claim-ada"
    assert "claim-ada is taken, and that is not its secret" in refusal(running_hub, "claim-ada", "guess")
    assert "taken" in refusal(running_hub, "claim-ada", "")
    with running_hub.login("claim-ada") as again:  # her own secret still opens it
        assert again.whoami()["name"] == "claim-ada"


def test_ten_mistyped_codes_in_a_minute_do_not_lock_the_room_out(running_hub: RunningHub) -> None:
    for index in range(12):
        assert "not the workshop code" in refusal(running_hub, f"room-{index:02d}", "s3cret", "not-the-code")
    # A classmate behind the same address who types it right is let in at once.
    with running_hub.login("room-latecomer") as latecomer:
        assert latecomer.whoami()["name"] == "room-latecomer"


def test_a_name_hammered_with_wrong_secrets_is_delayed_and_logged_but_opens_with_its_own(
    running_hub: RunningHub,
) -> None:
    running_hub.login("claim-target").close()
    allowance = running_hub.settings.auth.login_attempts_per_minute
    for _ in range(allowance + 2):
        refusal(running_hub, "claim-target", "wrong-guess")
    logged = re.findall(
        r"under the name 'claim-target' from \S+ .* answering after (\d+) s", running_hub.log()
    )
    # Past the name's allowance (or from the first, if the run's one address passed its ceiling),
    # each failure is answered later than the one before.
    delays = [int(delay) for delay in logged]
    assert len(delays) >= 2 and delays == [min(2**n, 30) for n in range(len(delays))], delays
    with running_hub.login("claim-target") as owner:  # delayed, never locked
        assert owner.whoami()["name"] == "claim-target"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def instructor(running_hub: RunningHub) -> Iterator[HubClient]:
    """auth.admins: the form refuses to hand out an admin's name; the instructor claims it with
    `dlworkshop accounts claim` (the hub of `dlworkshop up`), then logs in."""
    assert "instructor's name" in refusal(running_hub, "instructor", "first-come")
    claimed = cli(
        "accounts", "claim", "instructor", "-c", str(running_hub.config_path), DLWORKSHOP_SECRET="teach-4242"
    )
    assert claimed.returncode == 0 and "claimed instructor" in claimed.stdout, claimed.stdout + claimed.stderr
    with running_hub.login("instructor", secret="teach-4242") as client:
        assert client.whoami()["admin"] is True
        yield client


def test_an_admin_releases_a_forgotten_name_on_the_local_hub(
    running_hub: RunningHub, instructor: HubClient
) -> None:
    config = str(running_hub.config_path)
    running_hub.login("claim-bo", secret="forgotten-1").close()
    listed = dlworkshop("accounts", "names", "-c", config)
    assert listed.returncode == 0 and "claim-bo" in listed.stdout.split(), listed.stdout + listed.stderr

    released = dlworkshop("accounts", "release", "claim-bo", "-c", config)
    assert released.returncode == 0 and "released claim-bo" in released.stdout, (
        released.stdout + released.stderr
    )
    with running_hub.login("claim-bo", secret="remembered-2") as bo:
        assert bo.whoami()["name"] == "claim-bo"
    assert "taken" in refusal(running_hub, "claim-bo", "forgotten-1")

    nobody = dlworkshop("accounts", "release", "claim-nobody", "-c", config)
    assert nobody.returncode != 0 and "claim-nobody is not claimed" in nobody.stderr
    assert "Traceback" not in nobody.stdout + nobody.stderr


def test_an_admin_releases_a_name_through_the_hubs_api_with_their_token(
    running_hub: RunningHub, instructor: HubClient
) -> None:
    """As against a deployed hub: `--hub URL` and an admin's API token, through the hub's proxy."""
    running_hub.login("claim-cy", secret="forgotten-3").close()
    admin = instructor.create_token("instructor", "release names")
    listed = cli("accounts", "names", "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN=admin)
    assert listed.returncode == 0 and "claim-cy" in listed.stdout.split(), listed.stdout + listed.stderr

    with running_hub.login("claim-dee") as dee:  # a learner's own token is not enough
        learner = dee.create_token("claim-dee", "try to release")
    refused = cli("accounts", "release", "claim-cy", "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN=learner)
    assert refused.returncode != 0 and "HTTP 403" in refused.stderr and "admin's" in refused.stderr
    assert "taken" in refusal(running_hub, "claim-cy", "new-secret-4")

    released = cli("accounts", "release", "claim-cy", "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN=admin)
    assert released.returncode == 0 and "released claim-cy" in released.stdout, (
        released.stdout + released.stderr
    )
    with running_hub.login("claim-cy", secret="new-secret-4") as cy:
        assert cy.whoami()["name"] == "claim-cy"

    nobody = cli("accounts", "release", "claim-nobody", "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN=admin)
    assert nobody.returncode != 0 and "claim-nobody is not claimed" in nobody.stderr
    no_token = cli("accounts", "release", "claim-cy", "--hub", running_hub.url, DLWORKSHOP_HUB_TOKEN="")
    assert no_token.returncode != 0 and "DLWORKSHOP_HUB_TOKEN" in no_token.stderr
    assert "Traceback" not in nobody.stderr + no_token.stderr + refused.stderr
