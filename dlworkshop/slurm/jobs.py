"""A learner's server as a Slurm job request, and the Unix accounts learners' jobs run under.

One function per `sbatch` option, so `check`, the hub's spawner and the tests read the same
request: the CPU quota rounded up to whole CPUs, --mem from the memory limit (Slurm enforces it with
its memory cgroup), and the GPU policy as a GRES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dlworkshop import contract
from dlworkshop.settings import Settings

# A learner's job's scratch folder: the private /tmp job_container/tmpfs mounts (slurm/limits.py).
JOB_TMPDIR = "/tmp"


def cpus_per_task(cpu: float) -> int:
    """Slurm gives whole CPUs: a fractional quota rounds up (0.5 -> 1)."""
    return max(1, math.ceil(cpu - 1e-9))


def memory_option(memory: int) -> str:
    """--mem in MiB (rounded up), the unit every Slurm version reads."""
    return f"{math.ceil(memory / 2**20)}M"


def gres(settings: Settings) -> str | None:
    """The GRES of one learner: whole GPUs, shards of one, or one MIG slice (None: no GPU)."""
    gpu, slurm = settings.resources.gpu, settings.slurm
    if gpu.policy == "whole":
        kind = f"gpu:{slurm.gpu_type}" if slurm.gpu_type else "gpu"
        return f"{kind}:{gpu.gpus_per_learner}"
    if gpu.policy == "shared":
        return f"shard:{gpu.shares_per_learner(slurm.shards_per_gpu)}"
    if gpu.policy == "mig":
        return f"gpu:{slurm.mig_profile}:{gpu.gpus_per_learner}"
    return None


def gpu_memory_cap_mb(settings: Settings) -> int | None:
    """The learner's TensorFlow memory cap: memory_cap_mb, else a shared GPU's share."""
    gpu = settings.resources.gpu
    return gpu.learner_memory_mb(gpu.memory_mb)


@dataclass(frozen=True)
class JobRequest:
    """What `sbatch` is asked for each learner."""

    cpus_per_task: int
    memory: str
    time_limit: str
    gres: str | None = None
    partition: str | None = None
    reservation: str | None = None
    account: str | None = None
    qos: str | None = None

    def sbatch_options(self) -> list[str]:
        options = [
            f"--job-name={contract.SLURM_JOB_NAME}",
            f"--cpus-per-task={self.cpus_per_task}",
            f"--mem={self.memory}",
            f"--time={self.time_limit}",
        ]
        for name in ("gres", "partition", "reservation", "account", "qos"):
            value = getattr(self, name)
            if value:
                options.append(f"--{name}={value}")
        return options


def job_request(settings: Settings) -> JobRequest:
    resources, slurm = settings.resources, settings.slurm
    return JobRequest(
        cpus_per_task=cpus_per_task(resources.cpu),
        memory=memory_option(resources.memory),
        time_limit=slurm.time_limit,
        gres=gres(settings),
        partition=slurm.partition,
        reservation=slurm.reservation,
        account=slurm.account,
        qos=slurm.qos,
    )


def account_count(settings: Settings) -> int:
    """Accounts to create: every learner, every pre-warmed seat, every admin and the smoke-test user,
    unless slurm.accounts.count says how many."""
    count = settings.slurm.accounts.count
    if count != "auto":
        return int(count)
    return settings.learners.total + settings.prewarm_seats + len(settings.auth.admins) + 1


def account_names(settings: Settings) -> list[str]:
    accounts = settings.slurm.accounts
    total = account_count(settings)
    width = max(2, len(str(total)))
    return [f"{accounts.prefix}{index:0{width}d}" for index in range(1, total + 1)]


def account_uids(settings: Settings) -> dict[str, int]:
    """Each account's UID (its own group has the same GID): the same on every node."""
    first = settings.slurm.accounts.first_uid
    return {name: first + index for index, name in enumerate(account_names(settings))}
