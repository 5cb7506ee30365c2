"""hub.backend slurm in workshop.yaml: the job request each policy turns into, what Slurm cannot take
(refused at its key and line), the capacity table from the partition's nodes and the reservation
line `check` prints."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dlworkshop.errors import ConfigError
from dlworkshop.settings import SlurmNode, parse_bytes, parse_settings
from dlworkshop.slurm.jobs import account_names, account_uids, gpu_memory_cap_mb, job_request
from dlworkshop.slurm.planning import cluster_capacity, reservation_command

REPO = Path(__file__).resolve().parents[2]
BASE = "auth: {mode: shared-code, access_code: x}\nhub: {backend: slurm}\n"


def settings(extra: str = ""):  # type: ignore[no-untyped-def]
    return parse_settings(BASE + extra)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, source="workshop.yaml")
    return raised.value.problems


@pytest.mark.parametrize(
    ("gpu", "slurm", "gres"),
    [
        ("{policy: none}", "{}", None),
        ("{policy: whole, per_learner: 1}", "{}", "gpu:1"),
        ("{policy: whole, per_learner: 2}", "{gpu_type: a100}", "gpu:a100:2"),
        ("{policy: shared, per_learner: 1/2, memory_mb: 16000}", "{}", "shard:1"),
        ("{policy: shared, per_learner: 1/4, memory_mb: 16000}", "{shards_per_gpu: 8}", "shard:2"),
        ("{policy: mig}", "{mig_profile: 1g.10gb}", "gpu:1g.10gb:1"),
    ],
)
def test_each_gpu_policy_is_one_gres(gpu: str, slurm: str, gres: str | None) -> None:
    request = job_request(settings(f"resources: {{gpu: {gpu}}}\nslurm: {slurm}\n"))
    assert request.gres == gres
    assert (f"--gres={gres}" in request.sbatch_options()) == (gres is not None)


def test_cpu_rounds_up_and_memory_is_passed_to_slurm() -> None:
    request = job_request(settings("resources: {cpu: 0.5, memory: 1.5G}\n"))
    assert request.cpus_per_task == 1
    assert request.memory == "1536M"
    options = request.sbatch_options()
    assert "--cpus-per-task=1" in options and "--mem=1536M" in options
    assert job_request(settings("resources: {cpu: 2}\n")).cpus_per_task == 2


def test_site_names_reach_the_job() -> None:
    options = job_request(
        settings(
            "slurm: {partition: gpu, reservation: course, account: training, qos: workshop, "
            "time_limit: '1-00:00:00'}\n"
        )
    ).sbatch_options()
    for option in ("--partition=gpu", "--reservation=course", "--account=training", "--qos=workshop"):
        assert option in options
    assert "--time=1-00:00:00" in options


def test_a_shared_gpu_caps_each_learners_memory() -> None:
    shared = settings("resources: {gpu: {policy: shared, per_learner: 1/4, memory_mb: 40000}}\n")
    assert gpu_memory_cap_mb(shared) == 10000
    assert gpu_memory_cap_mb(settings()) is None


def test_accounts_cover_learners_seats_admins_and_the_smoke_test_user() -> None:
    named = settings("learners: {names: [ada, bo, cy]}\nslurm: {accounts: {first_uid: 3001}}\n")
    # 3 learners (no seats: names are known), no admin, the smoke-test user
    assert account_names(named) == ["dlw-01", "dlw-02", "dlw-03", "dlw-04"]
    assert account_uids(named)["dlw-04"] == 3004
    room = parse_settings(
        "learners: {count: 60}\nauth: {mode: shared-code, access_code: x, admins: [i]}\n"
        "hub: {backend: slurm}\nslurm: {accounts: {prefix: ws-}}\n"
    )
    names = account_names(room)
    assert len(names) == 60 + 60 + 1 + 1 and names[0] == "ws-001"


def test_what_slurm_cannot_take_is_refused_at_its_key_and_line() -> None:
    found = problems(
        BASE
        + "resources:\n  pids: 64\n  gpu: {policy: mig, mig_devices: [MIG-1]}\n"
        + "image: {source: archive, archive: x.tar}\n"
        + "slurm: {gpu_type: a100}\n"
    )
    text = "\n".join(found)
    assert "workshop.yaml:4: resources.pids: only the Docker backend reads it" in text
    assert "resources.gpu.mig_devices: only the Docker backend reads it: Slurm picks the MIG slices" in text
    assert "workshop.yaml:6: image.source: the learner environment is copied out of the image" in text
    assert "workshop.yaml:7: slurm.gpu_type: only policy whole reads it (the policy is mig)" in text
    assert "slurm.mig_profile: policy mig on Slurm needs the MIG GRES type" in text


def test_docker_only_quotas_and_mounts_are_refused_only_where_asked_for() -> None:
    found = problems(
        BASE
        + "resources:\n  disk: 2G\n  tmp: 64M\n  shared_folder: true\n"
        + "  extra_mounts: [{source: /srv/data, target: /data}]\n"
    )
    text = "\n".join(found)
    assert "workshop.yaml:4: resources.disk: only the Docker backend reads it: learners' files live" in text
    assert "workshop.yaml:5: resources.tmp: only the Docker backend reads it: a job's /tmp" in text
    assert "workshop.yaml:6: resources.shared_folder: a shared folder on a cluster" in text
    assert "workshop.yaml:7: resources.extra_mounts: only the Docker backend reads it" in text
    # Left at their defaults (the 5G quota, the shared folder on where Docker mounts it), or asked
    # off, they are no problem; the environment variables reach the jobs.
    assert not settings().mounts_shared_folder
    off = settings("resources: {disk: null, shared_folder: false, extra_mounts: [], extra_env: {A: b}}\n")
    assert off.resources.extra_env == {"A": "b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "slurm: {partition: 'gpu,cpu'}\n", "slurm.partition: 'gpu,cpu' is not a Slurm name"),
        (BASE + "slurm: {time_limit: 8h}\n", "slurm.time_limit: '8h' is not a Slurm time limit"),
        (
            BASE + "resources: {gpu: {policy: shared, per_learner: 1/3, memory_mb: 9000}}\n"
            "slurm: {shards_per_gpu: 4}\n",
            "slurm.shards_per_gpu: 4 shards per GPU cannot be split into 3 equal shares",
        ),
        (
            BASE + "resources: {gpu: {policy: shared, per_learner: 1/2}}\n",
            "resources.gpu.memory_mb: a shared GPU on Slurm needs the memory of one GPU",
        ),
        (BASE + "slurm: {environment: apptainer}\n", "slurm.apptainer_image: environment apptainer needs"),
        (BASE + "slurm: {apptainer_image: /x.sif}\n", "slurm.apptainer_image: only environment apptainer"),
        (
            "auth: {mode: shared-code, access_code: x}\nslurm: {partition: gpu}\n",
            "slurm: only hub.backend slurm reads this section",
        ),
        (BASE + "kubernetes: {}\n", "kubernetes: only hub.backend kubernetes reads this section"),
        (BASE + "hub: {backend: slurm, network: x}\n", "hub.network: only the Docker backend reads it"),
        (
            BASE + "workshop: {start: 2026-12-01T09:00:00, end: 2026-12-01T08:00:00}\n",
            "workshop: end (2026-12-01T08:00:00) is not after start",
        ),
    ],
)
def test_each_bad_slurm_setting_has_its_own_message(text: str, message: str) -> None:
    assert any(message in problem for problem in problems(text)), problems(text)


def test_the_capacity_table_counts_learners_per_node_and_says_what_limits_them() -> None:
    room = parse_settings(
        "learners: {count: 10}\nauth: {mode: shared-code, access_code: x}\nimage: {variant: cuda}\n"
        "resources: {cpu: 3.5, memory: 8G, gpu: {policy: whole, per_learner: 1}}\nhub: {backend: slurm}\n"
    )
    nodes = [
        SlurmNode(name="big", cpus=64, memory=parse_bytes("512G"), gpus=4, count=2),
        SlurmNode(name="small", cpus=8, memory=parse_bytes("64G"), gpus=4),
    ]
    plan = cluster_capacity(room, nodes)
    assert [(row.learners_each, row.limited_by) for row in plan.nodes] == [(4, "gpu"), (2, "cpu")]
    assert plan.carries == 10 and not plan.problems
    assert any("rounded up to --cpus-per-task=4" in note for note in plan.notes)
    short = cluster_capacity(room, nodes[1:])
    assert short.problems and "the nodes carry 2" in short.problems[0]


def test_the_reservation_line_matches_the_workshops_hours_accounts_and_nodes() -> None:
    room = parse_settings(
        "workshop: {start: 2026-12-01T09:00:00+01:00, end: 2026-12-01T17:00:00+01:00}\n"
        "learners: {names: [ada, bo]}\nauth: {mode: shared-code, access_code: x}\n"
        "prewarm: {minutes_before: 30}\nhub: {backend: slurm}\n"
        "slurm: {partition: gpu, reservation: dl-course}\n"
    )
    line = reservation_command(room, [SlurmNode(name="n", cpus=4, memory=parse_bytes("16G"), count=3)])
    assert line == (
        "scontrol create reservation ReservationName=dl-course StartTime=2026-12-01T08:30:00 "
        "EndTime=2026-12-01T17:00:00 Users=dlw-01,dlw-02,dlw-03 PartitionName=gpu NodeCnt=1"
    )
    assert reservation_command(settings(), []) is None


def check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlworkshop", "check", "-c", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("example", sorted((REPO / "examples/slurm").glob("*.yaml")), ids=lambda p: p.name)
def test_slurm_examples_pass_check_on_the_partition_they_plan_for(example: Path) -> None:
    planned = re.search(r"^# Plan check: dlworkshop check -c \S+ ?(.*)$", example.read_text(), re.MULTILINE)
    assert planned, f"{example.name} must say in a comment which partition it plans for"
    result = check(example, *shlex.split(planned.group(1)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "each learner's job: sbatch" in result.stdout
    assert "the nodes carry" in result.stdout


def test_check_refuses_a_room_the_partition_cannot_carry(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text("learners: {count: 40}\n" + BASE + "resources: {cpu: 2, memory: 4G}\n")
    result = check(config, "--node-count", "2", "--node-cpus", "16", "--node-memory", "64G")
    assert result.returncode == 2
    assert "slurm.nodes: all 40 learners need 40 jobs of 2 CPUs, 4G; the nodes carry 16" in result.stderr
    assert "Traceback" not in result.stderr
