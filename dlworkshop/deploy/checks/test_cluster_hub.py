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


def test_jobs_get_a_private_tmp_and_a_private_queue(login: Any) -> None:
    """slurm.conf as dlworkshop.slurm.limits.slurm_conf_lines() asks (the site's file)."""
    from dlworkshop.slurm.limits import missing_from_config, parse_show_config

    shown = login.run("scontrol show config")
    assert shown.rc == 0, shown.stderr
    problems = missing_from_config(parse_show_config(shown.stdout))
    assert not problems, "; ".join(problems)


def test_each_learner_is_held_to_the_workshops_cpus_memory_jobs_and_partition(
    login: Any, expected: dict[str, Any]
) -> None:
    from dlworkshop.slurm.limits import ASSOCIATION_FORMAT, LearnerLimits, looser_than, parse_associations

    assert expected["slurm_account"], (
        "slurm.account is not set: the learners' CPU, memory and job limits live on their "
        "associations in a Slurm account (slurmdbd)"
    )
    limits = LearnerLimits(**expected["learner_limits"])
    shown = login.run(
        f"sacctmgr --noheader --parsable2 show association where account={shlex.quote(expected['slurm_account'])} "
        f"format={ASSOCIATION_FORMAT}"
    )
    assert shown.rc == 0, shown.stderr
    rows = parse_associations(shown.stdout)
    loose = {}
    for name in expected["accounts"]:
        mine = [row for row in rows if row["User"] == name]
        problems = [problem for row in mine for problem in looser_than(limits, row)]
        if not mine or problems:
            loose[name] = problems or ["no association in the account"]
    assert not loose, f"looser than the workshop's {limits.describe()}: {loose}"


def test_the_hubs_journal_is_capped_and_its_database_private(login: Any, expected: dict[str, Any]) -> None:
    namespace = login.run("systemctl show dlworkshop-hub --property=LogNamespace --value").stdout.strip()
    assert namespace, "the hub logs into the system journal, uncapped (LogNamespace= unset)"
    journald = login.file(f"/etc/systemd/journald@{namespace}.conf")
    assert journald.exists and f"SystemMaxUse={expected['log_max']}" in journald.content_string
    database = login.file(f"{expected['hub_home']}/data/jupyterhub.sqlite")
    assert database.exists and database.mode == 0o600, f"{database.path}: {database.mode:o}"


def test_the_hubs_plain_port_answers_no_other_local_user(login: Any, expected: dict[str, Any]) -> None:
    """Only nginx (TLS), the hub and root reach the hub's HTTP port on the loopback; a learner's
    account on the login node does not."""
    learner = next(iter(expected["accounts"]))
    probe = f"exec 3<>/dev/tcp/{expected['hub_bind']}/{expected['hub_port']}"
    as_learner = login.run(f"runuser -u {shlex.quote(learner)} -- bash -c {shlex.quote(probe)}")
    assert as_learner.rc != 0, f"{learner} reaches the hub's plain HTTP port on the login node"
    assert login.run(f"bash -c {shlex.quote(probe)}").rc == 0, "the hub's port does not answer root"
