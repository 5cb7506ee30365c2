"""The cluster deploy's parts without a cluster: what the playbook receives for hub.backend slurm,
checked against the contract and the settings, and the inventory shape it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkshop import contract
from dlworkshop.deploy.cluster import cluster_hosts
from dlworkshop.deploy.playbook_vars import cluster_playbook_vars, cluster_verify_vars
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import parse_settings

SETTINGS = parse_settings(
    "learners: {count: 3}\nauth: {mode: shared-code, access_code: x}\n"
    "resources: {gpu: {policy: whole, per_learner: 1}}\n"
    "hub: {backend: slurm, tls: {mode: self-signed, domain: login.example.org}}\n"
    "slurm: {partition: gpu, account: training, accounts: {first_uid: 5001}}\n"
)


def test_the_cluster_plays_get_the_accounts_the_hub_and_the_environment() -> None:
    extra = cluster_playbook_vars(
        SETTINGS, Path("/tmp/env.tar"), "sha256:e", Path("/tmp/hub.tar"), "sha256:h"
    )
    assert extra["workshop_accounts_list"][0] == {"name": "dlw-01", "uid": 5001}
    assert len(extra["workshop_accounts_list"]) == 3 + 3 + 1  # learners, seats, the smoke-test user
    assert extra["workshop_cluster_hub_learners"] == [a["name"] for a in extra["workshop_accounts_list"]]
    assert extra["workshop_cluster_hub_home"] == str(contract.cluster_hub_home("dlworkshop-hub"))
    assert extra["dlworkshop_contract"]["cluster_hub_prefix"] == str(contract.CLUSTER_HUB_PREFIX)
    assert extra["dlworkshop_contract"]["hub_home_env"] == contract.HUB_HOME_ENV
    assert extra["workshop_cluster_hub_gres"] == "gpu:1"
    assert extra["workshop_cluster_hub_slurm_account"] == "training"
    assert extra["workshop_learner_env_prefix"] == "/opt/dlworkshop-env"
    assert extra["tls_proxy_upstream"] == "127.0.0.1:8000"
    settings = extra["workshop_cluster_hub_settings"]
    assert settings["hub"]["backend"] == "slurm" and settings["auth"]["access_code"] == "x"
    expected = cluster_verify_vars(SETTINGS)
    assert expected["accounts"]["dlw-03"] == 5003 and expected["gres"] == "gpu:1"


def test_a_cluster_inventory_names_one_login_node(tmp_path: Path) -> None:
    two = tmp_path / "two.yml"
    two.write_text("workshop_login:\n  hosts:\n    a:\n    b:\nworkshop_compute:\n  hosts:\n    n1:\n")
    with pytest.raises(WorkshopError, match="names 2 hosts in `workshop_login`; the hub runs on one"):
        cluster_hosts(two)
    none = tmp_path / "vm.yml"
    none.write_text("workshop:\n  hosts:\n    hub1:\n")
    with pytest.raises(WorkshopError, match="no hosts in the `workshop_login` group"):
        cluster_hosts(none)
    good = tmp_path / "cluster.yml"
    good.write_text("workshop_login:\n  hosts:\n    login:\nworkshop_compute:\n  hosts:\n    n1:\n    n2:\n")
    assert cluster_hosts(good) == ["login", "n1", "n2"]
