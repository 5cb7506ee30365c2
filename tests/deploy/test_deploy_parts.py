"""The deploy's pure parts: settings -> playbook variables, inventory checks, the summary, the
filters the playbook uses, and ansible-lint at the production profile."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from dlworkshop import contract
from dlworkshop.deploy.archive import archive_image_id, archive_images
from dlworkshop.deploy.inventory import hosts_in, limited, load_inventory
from dlworkshop.deploy.playbook_vars import check_deployable, docker_container_params, playbook_vars
from dlworkshop.deploy.runner import EventPrinter, failure_message, host_stats, private_run_dir, summary_table
from dlworkshop.docker_host.hub_runtime import hub_container_spec, hub_settings
from dlworkshop.errors import ConfigError, WorkshopError
from dlworkshop.settings import Settings, parse_settings

REPO = Path(__file__).resolve().parents[2]
CONFIG = """\
auth: {mode: shared-code, access_code: s3cret-code}
image: {name: dlworkshop/learner, tag: test, source: archive, archive: learner.tar}
resources: {gpu: {policy: shared, per_learner: 1/2}}
hub:
  image: dlworkshop/hub:test
  image_archive: hub.tar
  tls: {mode: self-signed, domain: hub.example.org}
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    _fake_archive(tmp_path / "learner.tar", [{"Config": "aaa.json", "RepoTags": ["dlworkshop/learner:test"]}])
    _fake_archive(tmp_path / "hub.tar", [{"Config": "bbb.json", "RepoTags": ["dlworkshop/hub:test"]}])
    return tmp_path


@pytest.fixture
def settings(config_dir: Path) -> Settings:
    """As `dlworkshop deploy -c <config_dir>/workshop.yaml` reads it: paths relative to the file."""
    return parse_settings(CONFIG, base_dir=config_dir)


def test_rendered_settings_round_trip_with_secrets(settings: Settings) -> None:
    data = hub_settings(settings)
    assert data["auth"]["access_code"] == "s3cret-code"
    # The hub on the host reads exactly these settings back, less what only the installer uses.
    read_back = Settings.model_validate(yaml.safe_load(yaml.safe_dump(data)))
    assert read_back.hub.image_archive is None
    assert read_back.model_dump(exclude={"hub": {"image_archive"}}) == settings.model_dump(
        exclude={"hub": {"image_archive"}}
    )


def test_playbook_vars_come_from_the_settings(settings: Settings, config_dir: Path) -> None:
    extra = playbook_vars(settings)
    assert extra["workshop_images_source"] == "archive"
    assert extra["workshop_images_wanted"] == [
        {
            "name": "dlworkshop/learner:test",
            "archive": str((config_dir / "learner.tar").resolve()),
            "id": "sha256:aaa",
        },
        {
            "name": "dlworkshop/hub:test",
            "archive": str((config_dir / "hub.tar").resolve()),
            "id": "sha256:bbb",
        },
    ]
    assert extra["tls_proxy_domain"] == "hub.example.org"
    assert extra["tls_proxy_upstream"] == "127.0.0.1:8000"
    assert extra["workshop_hub_url"] == "https://hub.example.org"
    assert (
        extra["workshop_hub_bridge"]
        == extra["workshop_firewall_bridge"]
        == contract.bridge_name("dlworkshop")
    )
    # Every variable belongs to the role that reads it, or is the shared contract.
    prefixes = (
        "workshop_images_",
        "workshop_hub_",
        "tls_proxy_",
        "workshop_firewall_",
        "docker_engine_log_",
        "dlworkshop_contract",
    )
    assert all(name.startswith(prefixes) for name in extra)


def test_the_roles_get_the_contracts_names(settings: Settings) -> None:
    """What the playbook receives, checked against dlworkshop/contract.py (not the reverse)."""
    extra = playbook_vars(settings)
    shared = extra["dlworkshop_contract"]
    assert shared["host_state"] == str(contract.HOST_STATE)
    assert shared["host_tls"] == str(contract.HOST_TLS)
    assert shared["metadata_address"] == contract.METADATA_ADDRESS
    assert shared["label_hub"] == contract.LABEL_HUB
    assert shared["docker_live_restore"] is contract.DOCKER_LIVE_RESTORE is True
    assert extra["workshop_hub_dir"] == f"{contract.HOST_STATE}/{settings.hub.container_name}"
    volumes = extra["workshop_hub_container"]["volumes"]
    assert f"{extra['workshop_hub_dir']}/{contract.CONFIG_NAME}:{contract.HUB_SETTINGS}:ro" in volumes
    assert f"{settings.hub.data_volume}:{contract.HUB_DATA}:rw" in volumes
    assert extra["workshop_hub_container"]["env"] == {contract.CONFIG_ENV: str(contract.HUB_SETTINGS)}
    assert extra["workshop_hub_container"]["labels"] == {contract.LABEL_HUB: settings.hub.container_name}
    # Every role default that names a shared value reads it from the contract var, not a copy.
    for defaults in (REPO / "ansible" / "roles").glob("*/defaults/main.yml"):
        text = defaults.read_text()
        for value in (
            str(contract.HOST_STATE),
            str(contract.HOST_TLS),
            contract.METADATA_ADDRESS,
            contract.LABEL_HUB,
        ):
            assert value not in text, f"{defaults} repeats {value}; read it from dlworkshop_contract"


def test_hub_container_is_the_one_dlworkshop_up_runs(settings: Settings) -> None:
    spec = hub_container_spec(settings, "/var/lib/dlworkshop/dlworkshop-hub/workshop.yaml")
    params = docker_container_params(spec)
    assert params["published_ports"] == [f"127.0.0.1:8000:{contract.HUB_PORT}"]
    assert params["restart_policy"] == "unless-stopped"
    assert f"{contract.DOCKER_SOCKET}:{contract.DOCKER_SOCKET}:rw" in params["volumes"]
    assert params["networks"] == [{"name": "dlworkshop"}]
    # Emptied at every start of the container, a restart after a crash included (the proxy's pid file).
    assert params["tmpfs"] == [f"{contract.HUB_RUNTIME}:size=16m,mode=0755"]
    # The kernel's count of each learner's start CPU, read-only (auto admission).
    assert f"{contract.HOST_CGROUP}:{contract.HUB_HOST_CGROUP}:ro" in params["volumes"]
    # Its log capped by its own options, as `up`'s hub is, whatever the engine's defaults.
    assert params["log_driver"] == "json-file"
    assert params["log_options"] == contract.log_options(settings.resources.log_max)
    assert spec["log_config"] == contract.docker_log_config(settings.resources.log_max)


def test_the_engines_default_log_cap_is_the_containers_own() -> None:
    settings = parse_settings(
        "auth: {mode: shared-code, access_code: x}\nresources: {log_max: 12M}\n"
        "hub: {tls: {mode: self-signed, domain: hub.example.org}}\n"
    )
    extra = playbook_vars(settings)
    per_file = str(4 * 2**20 - contract.LOG_ENTRY_MAX)
    assert extra["docker_engine_log_max_size"] == per_file
    assert extra["docker_engine_log_max_files"] == 3
    assert extra["workshop_hub_container"]["log_options"] == {"max-size": per_file, "max-file": "3"}


def test_bridge_name_fits_an_interface_name() -> None:
    assert len(contract.bridge_name("a-very-long-workshop-network-name")) <= 15
    assert contract.bridge_name("one") != contract.bridge_name("two")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("tls: {mode: none}", "hub.tls.mode"),
        ("tls: {mode: self-signed}", "hub.tls.domain"),
        ("tls: {mode: self-signed, domain: hub.example.org}\n  bind: 0.0.0.0", "hub.bind"),
    ],
)
def test_undeployable_settings_are_refused(config_dir: Path, change: str, problem: str) -> None:
    text = CONFIG.replace("tls: {mode: self-signed, domain: hub.example.org}", change)
    with pytest.raises(ConfigError) as caught:
        check_deployable(parse_settings(text, base_dir=config_dir))
    assert any(p.startswith(problem) for p in caught.value.problems)


def test_missing_archives_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        check_deployable(parse_settings(CONFIG, base_dir=tmp_path))
    assert [p.split(":")[0] for p in caught.value.problems] == ["image.archive", "hub.image_archive"]


def test_hosts_in_a_group_with_children() -> None:
    listing = {
        "workshop": {"hosts": ["a"], "children": ["gpu"]},
        "gpu": {"hosts": ["b", "a"]},
    }
    assert hosts_in(listing) == ["a", "b"]
    assert limited(["a", "b"], "b") == ["b"]
    assert limited(["a", "b"], None) == ["a", "b"]


def test_inventory_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(WorkshopError, match="does not exist"):
        load_inventory(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("workshop:\n  hosts: [unclosed\n")
    with pytest.raises(WorkshopError, match="cannot be read"):
        load_inventory(broken)
    other = tmp_path / "other.yml"
    other.write_text("webservers:\n  hosts:\n    web1:\n")
    with pytest.raises(WorkshopError, match="no hosts in the `workshop` group"):
        load_inventory(other)
    good = tmp_path / "good.yml"
    good.write_text("workshop:\n  hosts:\n    hub1:\n      ansible_host: 192.0.2.1\n")
    assert load_inventory(good)[0] == ["hub1"]
    with pytest.raises(WorkshopError, match="matches none"):
        load_inventory(good, limit="hub2")


def test_summary_lists_every_host() -> None:
    stats = {"ok": {"h1": 20, "h2": 3}, "changed": {"h1": 2}, "failures": {"h2": 1}, "dark": {}}
    rows = host_stats(stats, ["h3"])
    assert (rows["h1"].ok, rows["h1"].changed, rows["h2"].failed, rows["h3"].ok) == (20, 2, 1, 0)
    console = Console(record=True, width=100)
    console.print(summary_table(rows))
    text = console.export_text()
    assert "unreachable" in text
    assert all(host in text for host in ("h1", "h2", "h3"))


def test_failures_name_host_task_and_message() -> None:
    printer = EventPrinter(Console(file=open("/dev/null", "w")))  # noqa: SIM115
    printer({"event": "playbook_on_task_start", "event_data": {"task": "Load image"}})
    printer(
        {
            "event": "runner_on_failed",
            "event_data": {"host": "h1", "task": "Load image", "res": {"msg": "no space left\nmore"}},
        }
    )
    printer({"event": "runner_on_failed", "event_data": {"host": "h1", "task": "x", "ignore_errors": True}})
    printer(
        {
            "event": "runner_on_unreachable",
            "event_data": {"host": "h2", "task": "Gathering Facts", "res": {"msg": "ssh: connect refused"}},
        }
    )
    assert [str(f) for f in printer.failures] == [
        "h1: task 'Load image' failed: no space left",
        "h2: unreachable: ssh: connect refused",
    ]
    assert failure_message({"results": [{"failed": False}, {"failed": True, "msg": "item 2"}]}) == "item 2"


def _filters():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "dlworkshop_filters", REPO / "ansible/filter_plugins/dlworkshop.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_gpu_inventory_from_nvidia_smi() -> None:
    filters = _filters()
    query = "0, GPU-aaa, NVIDIA A100-SXM4-40GB, 40960\n1, GPU-bbb, NVIDIA A100-SXM4-40GB, 40960\n"
    assert filters.gpu_inventory(query) == [
        {"index": 0, "uuid": "GPU-aaa", "name": "NVIDIA A100-SXM4-40GB", "memory_mb": 40960},
        {"index": 1, "uuid": "GPU-bbb", "name": "NVIDIA A100-SXM4-40GB", "memory_mb": 40960},
    ]
    assert filters.gpu_inventory("") == []
    assert filters.gpu_inventory("No devices were found") == []


def test_auto_gpu_devices_become_the_hosts_gpus(settings: Settings) -> None:
    filters = _filters()
    gpus = [{"index": 0, "uuid": "GPU-aaa", "name": "A100", "memory_mb": 40960}]
    rendered = filters.settings_with_gpus(hub_settings(settings), gpus)
    assert rendered["resources"]["gpu"]["devices"] == ["GPU-aaa"]
    assert rendered["resources"]["gpu"]["memory_mb"] == 40960
    Settings.model_validate(rendered)  # still valid for the hub
    assert filters.settings_with_gpus(hub_settings(settings), []) == hub_settings(settings)


def test_playbook_is_ansible_lint_clean_at_the_production_profile() -> None:
    lint = shutil.which("ansible-lint", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("ansible-lint is not installed (it is in the test extra)")
    result = subprocess.run(
        [lint, "--profile", "production", "--offline", "--nocolor", "ansible/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_killed_runs_secrets_are_removed_by_the_next_run(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f"run-{dead.pid}"
    leftover.mkdir()
    (leftover / "extravars").write_text("secret")
    private = private_run_dir(tmp_path)
    assert not leftover.exists()
    assert private.name == f"run-{os.getpid()}"
    assert oct(private.stat().st_mode & 0o777) == oct(0o700)
    assert oct(tmp_path.stat().st_mode & 0o777) == oct(0o700)


def _fake_archive(path: Path, manifest: list[dict[str, object]]) -> Path:
    import io
    import json
    import tarfile

    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_image_ids_read_from_docker_and_oci_archives(tmp_path: Path) -> None:
    docker_layout = _fake_archive(
        tmp_path / "a.tar", [{"Config": "abc123.json", "RepoTags": ["dlworkshop/learner:test"], "Layers": []}]
    )
    oci_layout = _fake_archive(
        tmp_path / "b.tar",
        [{"Config": "blobs/sha256/def456", "RepoTags": ["dlworkshop/hub:test"], "Layers": []}],
    )
    assert archive_image_id(docker_layout, "dlworkshop/learner:test") == "sha256:abc123"
    assert archive_images(oci_layout) == {"dlworkshop/hub:test": "sha256:def456"}
    with pytest.raises(ConfigError, match="does not hold dlworkshop/hub:test"):
        archive_image_id(docker_layout, "dlworkshop/hub:test")
    (tmp_path / "junk.tar").write_text("not a tar")
    with pytest.raises(ConfigError, match="is not a `docker save` archive"):
        archive_images(tmp_path / "junk.tar")


def test_up_and_the_deploy_install_the_same_firewall_rules(settings: Settings) -> None:
    """The role's rules are dlworkshop.docker_host.firewall's, and ansible.builtin.iptables builds each into the
    very rule `dlworkshop up` inserts (so either one finds the other's with `iptables -C`)."""
    from ansible.modules.iptables import construct_rule

    from dlworkshop.docker_host.firewall import learner_rules

    extra = playbook_vars(settings)
    bridge = contract.bridge_name(settings.hub.network)
    rules = learner_rules(bridge)
    assert extra["workshop_firewall_rules"] == [rule.as_vars() for rule in rules]
    assert {rule.chain for rule in rules} == {"DOCKER-USER", "INPUT"}
    module_defaults = {
        name: None
        for name in [
            "protocol",
            "source",
            "destination",
            "tcp_flags",
            "jump",
            "gateway",
            "log_prefix",
            "log_level",
            "to_destination",
            "destination_ports",
            "to_source",
            "goto",
            "in_interface",
            "out_interface",
            "fragment",
            "set_counters",
            "source_port",
            "destination_port",
            "to_ports",
            "set_dscp_mark",
            "set_dscp_mark_class",
            "syn",
            "ctstate",
            "src_range",
            "dst_range",
            "match_set",
            "match_set_flags",
            "limit",
            "limit_burst",
            "uid_owner",
            "gid_owner",
            "reject_with",
            "icmp_type",
            "comment",
        ]
    }
    for rule in extra["workshop_firewall_rules"]:
        params = {
            **module_defaults,
            "match": [],
            "ip_version": "ipv4",
            **{
                key: rule[key] or None
                for key in ("in_interface", "destination", "ctstate", "jump", "comment")
            },
        }
        params["ctstate"] = params["ctstate"] or []
        module_rule = construct_rule(params)
        ours = rule["argv"][1:]  # less the chain

        def matches(args: list[str]) -> list[str]:
            return [args[i + 1] for i, arg in enumerate(args) if arg == "-m"]

        def option(args: list[str], name: str) -> str | None:
            return args[args.index(name) + 1] if name in args else None

        assert matches(module_rule) == matches(ours)
        for name in ("-i", "-d", "-j", "--ctstate", "--comment"):
            assert option(module_rule, name) == option(ours, name)


def test_the_deploy_prepares_the_same_work_folder_slots_as_up(settings: Settings) -> None:
    from dlworkshop.docker_host import work_volumes

    extra = playbook_vars(settings)
    hub = settings.hub.container_name
    assert extra["workshop_hub_work_quota"] is True
    assert extra["workshop_hub_work_slots"] == work_volumes.slot_names(settings)
    assert extra["workshop_hub_work_images"] == str(contract.work_images_dir(hub, contract.HOST_STATE))
    assert extra["workshop_hub_work_devices"] == str(contract.HOST_WORK_DEVICES / hub)
    assert Path(extra["workshop_hub_work_script"]).read_text() == work_volumes.SCRIPT.read_text()
    assert extra["workshop_hub_work_size"] == settings.resources.disk


def test_the_playbooks_filter_offers_only_slots_without_a_volume() -> None:
    spec = importlib.util.spec_from_file_location(
        "dlworkshop_filters", REPO / "ansible" / "filter_plugins" / "dlworkshop.py"
    )
    assert spec and spec.loader
    filters_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters_module)
    offer = filters_module.FilterModule().filters()["dlworkshop_free_slot_volumes"]
    claimed = {
        "Name": "h-work-ada",
        "Labels": {contract.LABEL_HUB: "h", contract.LABEL_WORK_SLOT: "slot-001"},
    }
    offered = offer([claimed], "h", ["slot-001", "slot-002"])
    assert [volume["name"] for volume in offered] == [contract.free_slot_volume_name("h", "slot-002")]
    assert offered[0]["driver_opts"]["device"] == str(contract.work_slot_device("h", "slot-002"))


def test_a_deploy_serves_tls_on_443_only() -> None:
    with pytest.raises(ConfigError) as caught:
        check_deployable(
            parse_settings(
                "auth: {mode: shared-code, access_code: x}\n"
                "hub: {tls: {mode: self-signed, domain: ws.example.org, port: 8443}}\n"
            )
        )
    assert any(
        problem.startswith("hub.tls.port: a deploy serves TLS on 443") for problem in caught.value.problems
    )
