from pathlib import Path

import pytest

from dlworkshop.errors import ConfigError
from dlworkshop.settings import load_settings, parse_bytes, parse_settings

REPO = Path(__file__).resolve().parents[2]
MINIMAL = "auth: {mode: shared-code, access_code: secret}\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, source="w.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    "example",
    sorted((REPO / "examples").rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(REPO / "examples")),
)
def test_shipped_examples_load_and_reach_the_hub_unchanged(example: Path) -> None:
    """Each example validates, and the settings file the hub reads from it (hub_runtime) gives the
    hub the same settings back."""
    import yaml

    from dlworkshop.docker_host.hub_runtime import hub_settings
    from dlworkshop.settings import Settings

    settings = load_settings(example)
    read_back = Settings.model_validate(yaml.safe_load(yaml.safe_dump(hub_settings(settings))))
    assert read_back.model_dump(exclude={"hub": {"image_archive"}}) == settings.model_dump(
        exclude={"hub": {"image_archive"}}
    )


def test_embedded_default_is_small_cpu_shared_code() -> None:
    settings = load_settings(None, default_access_code="abc")
    assert settings.auth.mode == "shared-code"
    assert settings.auth.access_code.get_secret_value() == "abc"
    assert settings.learners.total == 4
    assert settings.image.variant == "cpu"


def test_sizes_parse_like_docker() -> None:
    assert parse_bytes("2G") == 2 * 1024**3
    assert parse_bytes("512m") == 512 * 1024**2
    assert parse_bytes(1000) == 1000


def test_every_problem_is_reported_at_once_with_path_and_line() -> None:
    problems = problems_of(
        "learners: {count: 0}\n"
        "auth: {mode: shared-code}\n"
        "resources:\n"
        "  gpu: {policy: shared, per_learner: 0.3}\n"
        "  cpuz: 1\n"
    )
    assert len(problems) == 4
    assert problems[0].startswith("w.yaml:1: learners.count")
    assert any("auth" in p and "access_code" in p for p in problems)
    assert any("0.3 does not divide one GPU; use 1/2, 1/3, 1/4" in p for p in problems)
    assert any(p.startswith("w.yaml:5: resources.cpuz: unknown key") for p in problems)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("resources: {memory: lots}", "is not a size"),
        ("resources: {cpu: -1}", "resources.cpu"),
        ("resources: {gpu: {policy: whole, per_learner: 1.5}}", "not a whole number of GPUs"),
        ("resources: {gpu: {policy: mig}}", "MIG device UUIDs"),
        ("learners: {count: 2, names: [a, b, c]}", "disagrees"),
        ("image: {variant: tpu}", "image.variant"),
        ("image: {source: archive}", "image.archive"),
        ("hub: {backend: swarm}", "hub.backend"),
        ("hub: {tls: {mode: letsencrypt}}", "domain and a contact email"),
    ],
)
def test_broken_settings_are_rejected_with_their_own_message(snippet: str, expected: str) -> None:
    problems = problems_of(MINIMAL + snippet + "\n")
    assert any(expected in problem for problem in problems), problems


def test_gpu_share_accepts_fractions() -> None:
    settings = parse_settings(MINIMAL + "resources: {gpu: {policy: shared, per_learner: 1/4}}\n")
    assert settings.resources.gpu.learners_per_gpu == 4


def test_invalid_yaml_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_settings("auth: [unclosed\n")


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("workshop: {start: 2026-12-01T09:00:00, end: 2026-12-01T08:00:00}", "is not after start"),
        ("workshop: {start: 2026-12-01T09:00:00+01:00, end: 2026-12-01T17:00:00}", "both with a UTC offset"),
    ],
)
def test_the_workshop_ends_after_it_starts(snippet: str, expected: str) -> None:
    assert any(
        expected in problem and "workshop" in problem for problem in problems_of(MINIMAL + snippet + "\n")
    )


def test_the_end_helpers_and_the_export_notice_are_read() -> None:
    settings = parse_settings(
        "workshop: {start: 2026-12-01T09:00:00, end: 2026-12-01T17:00:00, export_notice: 'Zips: see the page'}\n"
        "auth: {mode: shared-code, access_code: x, helpers: [ana, ben]}\n"
    )
    assert settings.workshop.end is not None and settings.workshop.end.hour == 17
    assert settings.workshop.export_notice == "Zips: see the page"
    assert settings.auth.helpers == ["ana", "ben"]


def test_the_work_folder_quota_defaults_to_5g_and_can_be_off() -> None:
    assert load_settings(None, default_access_code="x").resources.disk == parse_bytes("5G")
    assert parse_settings(MINIMAL + "resources: {disk: null}\n").resources.disk is None
    assert (
        "resources.disk: 1M is too small for a work folder; give at least 64M"
        in problems_of(MINIMAL + "resources: {disk: 1M}\n")[0]
    )


def test_scratch_space_is_a_quarter_of_memory_and_smaller_than_it() -> None:
    assert parse_settings(MINIMAL + "resources: {memory: 1G}\n").resources.tmp_size == parse_bytes("256M")
    assert parse_settings(MINIMAL + "resources: {memory: 8G}\n").resources.tmp_size == parse_bytes("512M")
    assert "must be smaller than memory" in problems_of(MINIMAL + "resources: {memory: 1G, tmp: 1G}\n")[0]


def test_extra_mounts_and_environment_are_checked() -> None:
    settings = parse_settings(
        MINIMAL
        + "resources:\n"
        + "  extra_mounts: [{source: /srv/datasets/, target: /data/site}]\n"
        + "  extra_env: {HF_HUB_OFFLINE: '1'}\n"
    )
    assert settings.resources.extra_mounts[0].source == "/srv/datasets"
    assert settings.mounts_shared_folder  # on by default on Docker
    for text, message in [
        ("extra_mounts: [{source: data, target: /data}]", "data is not an absolute path"),
        ("extra_mounts: [{source: /d, target: /home/jovyan/work}]", "would hide the learner's own files"),
        (
            "extra_mounts: [{source: /d, target: /home/jovyan/work/shared}]",
            "is the instructor's shared folder",
        ),
        ("extra_env: {CPU_LIMIT: '8'}", "CPU_LIMIT is set by the hub for each learner"),
        ("extra_env: {'not a name': x}", "'not a name' is not an environment variable name"),
    ]:
        problems = problems_of(MINIMAL + "resources: {" + text + "}\n")
        assert len(problems) == 1 and message in problems[0], problems


def test_the_url_names_the_tls_port_unless_it_is_443() -> None:
    tls = "hub: {bind: 0.0.0.0, tls: {mode: self-signed, domain: ws.example.org%s}}\n"
    assert parse_settings(MINIMAL + tls % "").hub.url == "https://ws.example.org"
    assert parse_settings(MINIMAL + tls % ", port: 8443").hub.url == "https://ws.example.org:8443"
    assert parse_settings(MINIMAL).hub.url == "http://localhost:8000"


def test_an_engine_whose_table_nobody_registered_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings ask each engine's registered table; a missing one is a programming error, never
    a silent pass over what the engine refuses."""
    from dlworkshop.settings import support

    monkeypatch.delitem(support._TABLES, "kubernetes")
    with pytest.raises(RuntimeError, match=r"import dlworkshop\.engines"):
        parse_settings("auth: {mode: shared-code, access_code: x}\nhub: {backend: kubernetes}\n")


def test_each_engine_registers_its_own_table() -> None:
    from dlworkshop.kubernetes import supported as on_kubernetes
    from dlworkshop.settings import support
    from dlworkshop.slurm import supported as on_slurm

    assert support._TABLES["kubernetes"] is on_kubernetes.unsupported_settings
    assert support._TABLES["slurm"] is on_slurm.unsupported_settings
    assert support._TABLES["docker"] is support.docker_problems


def test_log_max_is_a_size_of_at_least_1m() -> None:
    assert parse_settings(MINIMAL).resources.log_max == parse_bytes("30M")
    assert parse_settings(MINIMAL + "resources: {log_max: 100M}\n").resources.log_max == 100 * 2**20
    (problem,) = problems_of(MINIMAL + "resources: {log_max: 100K}\n")
    assert problem.startswith("w.yaml:2: resources.log_max:") and "at least 1M" in problem
