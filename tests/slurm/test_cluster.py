"""The Slurm test cluster enforces what the Slurm backend will rely on: GPUs scheduled per job and
announced in CUDA_VISIBLE_DEVICES, devices a job was not granted fenced off by the cgroup, shards
that share a GPU, a per-user GPU quota a learner cannot bypass from a terminal, and running jobs
that survive a controller restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.slurm import COMPUTE_NODES, GPUS_PER_NODE, SHARDS_PER_GPU, Job, SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.docker]

LEARNERS = [f"dlw-{number:02d}" for number in range(1, 6)]
# A job that reports where it landed, then holds its allocation until the test releases it.
# SLURM_JOB_GPUS is the node's device index; CUDA_VISIBLE_DEVICES counts only the devices the job's
# cgroup lets it see, so it is 0 for any single-GPU job (Slurm's gres.html, on ConstrainDevices).
REPORT_AND_HOLD = """\
echo "uid=$(id -u) node=$(hostname) gpu=${SLURM_JOB_GPUS-none} cuda=${CUDA_VISIBLE_DEVICES-unset}"
echo started
while [ ! -e "$HOME/release-$SLURM_JOB_ID" ]; do sleep 0.2; done
"""
# Tries each fake GPU and prints the errno name: the device cgroup answers before any driver would.
OPEN_DEVICES = """\
echo granted=${SLURM_JOB_GPUS-none}
for minor in 0 1; do
  python3 -c "
import errno, os
try:
    os.close(os.open('/dev/nvidia$minor', os.O_RDWR))
    print('nvidia$minor', 'opened')
except OSError as error:
    print('nvidia$minor', errno.errorcode[error.errno])
"
done
echo cgroup=$(grep :devices: /proc/self/cgroup)
"""


@pytest.fixture(scope="module")
def learners(slurm_cluster: SlurmCluster) -> list[str]:
    for name in LEARNERS:
        slurm_cluster.add_user(name)
    return LEARNERS


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster, learners: list[str]) -> Iterator[SlurmCluster]:
    """The cluster with no job pending or running, before and after each test."""
    slurm_cluster.cancel_all_and_wait()
    yield slurm_cluster
    slurm_cluster.cancel_all_and_wait()


def started(cluster: SlurmCluster, user: str, job_id: int) -> dict[str, str]:
    """Wait until a REPORT_AND_HOLD job runs and has reported; returns what it reported."""
    job = cluster.wait_for_state(job_id, "RUNNING")
    cluster.wait_for_output(user, job_id, "started")
    first_line = cluster.output(user, job_id).splitlines()[0]
    return dict(item.split("=", 1) for item in first_line.split()) | {"slurm_node": job.node}


def release(cluster: SlurmCluster, user: str, job_id: int) -> Job:
    cluster.run(cluster.login, f"touch /home/{user}/release-{job_id}", user=user)
    return cluster.wait_for_state(job_id, "COMPLETED")


def test_sinfo_shows_both_nodes_idle_with_gpus_and_shards(slurm_cluster: SlurmCluster) -> None:
    out = slurm_cluster.run(
        slurm_cluster.login,
        f"sinfo --Node --noheader --partition={slurm_cluster.partition} --format='%N %t %G'",
    ).stdout
    shards = GPUS_PER_NODE * SHARDS_PER_GPU
    assert sorted(out.splitlines()) == [
        f"{node} idle gpu:{GPUS_PER_NODE},shard:{shards}" for node in COMPUTE_NODES
    ]


def test_a_learner_has_one_uid_and_a_private_home_on_every_node(
    slurm_cluster: SlurmCluster, learners: list[str]
) -> None:
    owner, other = learners[:2]
    uids = {node: slurm_cluster.run(node, f"id -u {owner}").stdout.strip() for node in slurm_cluster.nodes}
    assert len(set(uids.values())) == 1, uids
    for node in slurm_cluster.nodes:
        assert slurm_cluster.run(node, f"stat -c '%a %U' /home/{owner}").stdout.split() == ["700", owner]
    denied = slurm_cluster.run("node1", f"ls /home/{owner}", user=other, check=False)
    assert denied.returncode != 0
    assert "Permission denied" in denied.stderr


def test_a_job_runs_on_a_compute_node_under_the_learners_uid_with_its_gpu(
    cluster: SlurmCluster, learners: list[str]
) -> None:
    user = learners[0]
    uid = cluster.run(cluster.login, f"id -u {user}").stdout.strip()
    job_id = cluster.submit(user, REPORT_AND_HOLD, "--gres=gpu:1")
    report = started(cluster, user, job_id)
    assert report["uid"] == uid
    assert report["node"] in COMPUTE_NODES
    assert report["node"] == report["slurm_node"]
    assert report["gpu"] in {str(index) for index in range(GPUS_PER_NODE)}
    assert report["cuda"] == "0"  # the one device its cgroup lets it see
    # The same UID owns the process on the compute node itself, not only inside the job's shell.
    processes = cluster.run(report["node"], f"ps -o user= -u {uid}", check=False).stdout
    assert user in processes.split()
    release(cluster, user, job_id)


def test_four_gpu_jobs_get_distinct_gpus_and_a_fifth_waits_for_one_to_end(
    cluster: SlurmCluster, learners: list[str]
) -> None:
    first_four, fifth = learners[:4], learners[4]
    jobs = {user: cluster.submit(user, REPORT_AND_HOLD, "--gres=gpu:1") for user in first_four}
    reports = {user: started(cluster, user, job_id) for user, job_id in jobs.items()}
    places = {(report["node"], report["gpu"]) for report in reports.values()}
    assert places == {(node, str(index)) for node in COMPUTE_NODES for index in range(GPUS_PER_NODE)}

    waiting = cluster.submit(fifth, REPORT_AND_HOLD, "--gres=gpu:1")
    assert cluster.wait_for_reason(waiting, "Resources").state == "PENDING"
    freed_by = first_four[0]
    release(cluster, freed_by, jobs[freed_by])
    report = started(cluster, fifth, waiting)
    # The fifth learner gets exactly the GPU the first one gave back.
    assert (report["node"], report["gpu"]) == (reports[freed_by]["node"], reports[freed_by]["gpu"])


def test_a_job_cannot_open_a_gpu_it_was_not_granted(cluster: SlurmCluster, learners: list[str]) -> None:
    """No driver answers major 195 here, so a granted device's open ends in ENXIO, after the
    device cgroup let it through; a device the job was not granted ends in EPERM, from the cgroup."""
    user = learners[0]
    granted = cluster.submit(user, OPEN_DEVICES, "--gres=gpu:1", "--nodelist=node1")
    without_gpu = cluster.submit(learners[1], OPEN_DEVICES, "--nodelist=node1")
    cluster.wait_for_state(granted, "COMPLETED")
    cluster.wait_for_state(without_gpu, "COMPLETED")

    report = cluster.output(user, granted)
    granted_minor = report.splitlines()[0].removeprefix("granted=")
    other_minor = {"0": "1", "1": "0"}[granted_minor]
    assert f"nvidia{granted_minor} ENXIO" in report
    assert f"nvidia{other_minor} EPERM" in report
    assert f"/slurm_node1/uid_{cluster.uid(user)}/job_{granted}/" in report  # Slurm's cgroup, not Docker's
    no_gpu_report = cluster.output(learners[1], without_gpu)
    assert "granted=none" in no_gpu_report
    assert "nvidia0 EPERM" in no_gpu_report
    assert "nvidia1 EPERM" in no_gpu_report


def test_a_job_is_held_to_the_memory_it_asked_for(cluster: SlurmCluster, learners: list[str]) -> None:
    """ConstrainRAMSpace works under this engine: the job's memory cgroup carries its --mem."""
    user = learners[0]
    # The limit sits on the job's cgroup; the task's own cgroup inherits it (hierarchical).
    script = (
        'grep hierarchical_memory_limit "/sys/fs/cgroup/memory'
        '$(sed -n "s/^[0-9]*:memory://p" /proc/self/cgroup)/memory.stat"'
    )
    job_id = cluster.submit(user, script, "--mem=300M")
    cluster.wait_for_state(job_id, "COMPLETED")
    assert cluster.output(user, job_id).split() == ["hierarchical_memory_limit", str(300 * 1024 * 1024)]


def test_two_shard_jobs_share_one_gpu(cluster: SlurmCluster, learners: list[str]) -> None:
    sharers = learners[:2]
    jobs = {
        user: cluster.submit(user, REPORT_AND_HOLD, "--gres=shard:1", "--nodelist=node1") for user in sharers
    }
    reports = [started(cluster, user, job_id) for user, job_id in jobs.items()]
    assert all(cluster.job(job_id).state == "RUNNING" for job_id in jobs.values())  # at the same time
    assert len({(report["node"], report["gpu"]) for report in reports}) == 1
    assert all(report["cuda"] == "0" for report in reports)


def test_a_learner_cannot_take_more_than_their_gpu_quota(cluster: SlurmCluster, learners: list[str]) -> None:
    user = learners[0]
    refused = cluster.submit_refused(user, REPORT_AND_HOLD, "--gres=gpu:2")
    assert "QOSMaxGRESPerUser" in refused
    assert "Job violates accounting/QOS policy" in refused
    interactive = cluster.run(cluster.login, "srun --gres=gpu:2 true", user=user, check=False)
    assert interactive.returncode != 0
    assert "Job violates accounting/QOS policy" in interactive.stderr

    # One GPU is the quota over all of a learner's jobs: a second one waits for the first to end.
    first = cluster.submit(user, REPORT_AND_HOLD, "--gres=gpu:1")
    started(cluster, user, first)
    second = cluster.submit(user, REPORT_AND_HOLD, "--gres=gpu:1")
    assert cluster.wait_for_reason(second, "QOSMaxGRESPerUser").state == "PENDING"
    release(cluster, user, first)
    started(cluster, user, second)


def test_restarting_slurmctld_does_not_kill_running_jobs(cluster: SlurmCluster, learners: list[str]) -> None:
    user = learners[0]
    job_id = cluster.submit(user, REPORT_AND_HOLD, "--gres=gpu:1")
    report = started(cluster, user, job_id)
    pid_before = cluster.run(cluster.login, "systemctl show --property MainPID --value slurmctld").stdout
    cluster.restart_slurmctld()
    assert (
        cluster.run(cluster.login, "systemctl show --property MainPID --value slurmctld").stdout != pid_before
    )
    assert cluster.job(job_id).state == "RUNNING"
    assert cluster.run(report["node"], f"pgrep -u {user} -f slurm_script", check=False).returncode == 0
    job = release(cluster, user, job_id)
    assert job.node == report["node"]
