"""A workshop deployed on a Slurm cluster, checked from outside as an admin would: every node has
the learners' accounts with the same UIDs and munge answering; the login node runs the hub as a
service behind TLS, with sudo rules limited to the learners' Slurm commands, Slurm answering, the
partition offering the GRES asked for, and the learner environment's jupyterhub equal to the hub's.
Runs through `dlworkshop verify -i INVENTORY` (pytest-testinfra, once per node)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from dlworkshop.deploy.checks import test_deployed_hub as single_host

LOGIN = "workshop_login"


@pytest.fixture
def login(host: Any) -> Any:
    if LOGIN not in host.ansible.get_variables().get("group_names", []):
        pytest.skip("a compute node: the hub's checks are the login node's")
    return host


def test_munge_answers(host: Any) -> None:
    assert host.run("munge --no-input --string=check").rc == 0, "munge does not answer on this node"


def test_learner_accounts_have_their_uids_here(host: Any, expected: dict[str, Any]) -> None:
    wrong = {}
    for name, uid in expected["accounts"].items():
        entry = host.run(f"getent passwd {shlex.quote(name)}").stdout.strip().split(":")
        if len(entry) < 3 or entry[2] != str(uid):
            wrong[name] = entry[2] if len(entry) >= 3 else "missing"
    assert not wrong, f"accounts missing or with another UID than on every other node: {wrong}"


def test_learner_homes_are_private(login: Any, expected: dict[str, Any]) -> None:
    for name in expected["accounts"]:
        home = login.file(f"{expected['home_root']}/{name}")
        assert home.is_directory and home.user == name and home.mode == 0o700, f"{home.path}: {home.mode:o}"


def test_slurm_answers_and_the_partition_has_the_gres(login: Any, expected: dict[str, Any]) -> None:
    assert login.run("scontrol ping").rc == 0, "slurmctld does not answer"
    partition = f"--partition={expected['partition']}" if expected["partition"] else ""
    sinfo = login.run(f"sinfo --noheader --format=%G {partition}")
    assert sinfo.rc == 0 and sinfo.stdout.strip(), f"sinfo does not answer: {sinfo.stderr}"
    if expected["gres"]:
        kind = ":".join(expected["gres"].split(":")[:-1])  # gpu, gpu:a100, shard, gpu:1g.10gb
        assert kind in sinfo.stdout, f"the partition offers {sinfo.stdout.strip()}, not {kind}"


def test_the_environment_runs_the_hubs_jupyterhub(login: Any, expected: dict[str, Any]) -> None:
    environment = json.loads(login.file(expected["env_marker"]).content_string)
    hub = json.loads(login.file(expected["hub_marker"]).content_string)
    assert environment["jupyterhub"] == hub["jupyterhub"], (environment, hub)
    assert environment["batchspawner"] == hub["batchspawner"], (environment, hub)


def test_the_hub_runs_as_its_own_unprivileged_service(login: Any, expected: dict[str, Any]) -> None:
    service = login.service("dlworkshop-hub")
    assert service.is_running and service.is_enabled
    owners = login.run("ps -o user= -C jupyterhub").stdout.split()
    assert owners and set(owners) == {expected["hub_user"]}, owners
    assert "jupyterhub_idle_culler" in login.run("ps -eo args").stdout, "the idle culler is not running"
    settings = login.file(f"{expected['hub_home']}/workshop.yaml")
    assert settings.mode == 0o600 and settings.user == expected["hub_user"]


def test_sudo_lets_the_hub_run_only_slurm_commands_as_learners(login: Any, expected: dict[str, Any]) -> None:
    rules = login.run(f"sudo -l -U {shlex.quote(expected['hub_user'])}").stdout
    allowed = rules.split("may run the following commands")[-1]
    assert f"(%{expected['learner_group']})" in allowed
    commands = {part.strip().rsplit("/", 1)[-1] for part in allowed.split("SETENV:")[-1].split(",")}
    assert commands == {"sbatch", "squeue", "scancel"}, allowed
    assert "(ALL" not in allowed and "(root)" not in allowed


def test_https_answers_with_a_valid_chain_for_the_name(login: Any, expected: dict[str, Any]) -> None:
    single_host.test_https_answers_with_a_valid_chain_for_the_name(login, expected)


def test_http_redirects_to_https(login: Any, expected: dict[str, Any]) -> None:
    single_host.test_http_redirects_to_https(login, expected)
