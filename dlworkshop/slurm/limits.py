"""What a learner's Unix account may take from the cluster beyond their server, and what the site's
Slurm must do so that nothing leaks between learners. One function per concern, read by `check`
(which prints them), the deploy (which sets the associations' limits) and `verify` (which checks
the cluster against them).

- Quotas: each learner's association in the workshop's account is held to the server's own job
  plus `slurm.learner_jobs` jobs of the same size (CPUs, memory, jobs running and submitted), in
  the workshop's partition only. slurmctld refuses at submission a job that alone exceeds them.
- A private /tmp per job (job_container/tmpfs, on the nodes' local disk) and a private queue
  (PrivateData), in the site's slurm.conf: the deploy does not manage slurm.conf, so `check`
  prints the lines and `verify` checks that slurmctld runs with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dlworkshop.settings import Settings
from dlworkshop.slurm.jobs import cpus_per_task

# What PrivateData must hide from a learner: other users' jobs (squeue, scontrol show job, sacct),
# their usage (sshare, sreport) and their associations (sacctmgr show assoc).
PRIVATE_DATA = ("jobs", "usage", "users")
JOB_CONTAINER = "job_container/tmpfs"
# Where job_container/tmpfs makes each job's /tmp on a node: local disk, never a shared file system.
JOB_CONTAINER_BASE = "/var/spool/slurmd/job_containers"


@dataclass(frozen=True)
class LearnerLimits:
    """The most one learner account may hold at once, over all its jobs."""

    cpus: int
    memory_mb: int
    jobs: int  # running at once: the server and the learner's own
    submitted: int  # pending or running (a stopped server's job may still be ending)
    partition: str | None

    def grp_tres(self) -> str:
        return f"cpu={self.cpus},mem={self.memory_mb}"

    def sacctmgr_set(self) -> list[str]:
        """`sacctmgr modify user ... set` arguments of a learner's association."""
        return [f"GrpTRES={self.grp_tres()}", f"MaxJobs={self.jobs}", f"MaxSubmitJobs={self.submitted}"]

    def describe(self) -> str:
        where = f" in partition {self.partition}" if self.partition else ""
        return (
            f"{self.cpus} CPUs, {self.memory_mb} MiB, {self.jobs} job(s) running and "
            f"{self.submitted} submitted{where}"
        )


def learner_limits(settings: Settings) -> LearnerLimits:
    """The server's job plus slurm.learner_jobs more of its size. One more job may be submitted than
    run: a learner who restarts their server submits while the stopped job may still be ending."""
    jobs = 1 + settings.slurm.learner_jobs
    memory_mb = math.ceil(settings.resources.memory / 2**20)
    return LearnerLimits(
        cpus=jobs * cpus_per_task(settings.resources.cpu),
        memory_mb=jobs * memory_mb,
        jobs=jobs,
        submitted=jobs + 1,
        partition=settings.slurm.partition,
    )


# `sacctmgr --parsable2 show association` fields the deploy and `verify` read, in this order.
ASSOCIATION_FORMAT = "user,partition,grptres,maxjobs,maxsubmit"


def parse_associations(text: str) -> list[dict[str, str]]:
    """The users' associations (ASSOCIATION_FORMAT lines), one per user and partition; the
    account's own row (no user) is left out."""
    rows = []
    for line in text.splitlines():
        user, partition, grp_tres, max_jobs, max_submit = [*line.strip().split("|"), "", "", "", ""][:5]
        if user:
            rows.append(
                {
                    "User": user,
                    "Partition": partition,
                    "GrpTRES": grp_tres,
                    "MaxJobs": max_jobs,
                    "MaxSubmit": max_submit,
                }
            )
    return rows


def association_changes(text: str, learners: list[str], limits: LearnerLimits) -> dict[str, list[str]]:
    """What the deploy must do to the learners' associations (ASSOCIATION_FORMAT lines of the
    workshop's account): `add` those without one in the workshop's partition, `modify` those whose
    limits are not exactly the workshop's."""
    existing = {
        row["User"]: row for row in parse_associations(text) if row["Partition"] == (limits.partition or "")
    }
    wanted = {"cpu": limits.cpus, "mem": limits.memory_mb}
    add = [name for name in learners if name not in existing]
    modify = [
        name
        for name in learners
        if name in existing
        and (
            parse_tres(existing[name]["GrpTRES"]) != wanted
            or existing[name]["MaxJobs"] != str(limits.jobs)
            or existing[name]["MaxSubmit"] != str(limits.submitted)
        )
    ]
    return {"add": add, "modify": modify}


def parse_tres(text: str) -> dict[str, int]:
    """`cpu=2,mem=1800M` (sacctmgr's GrpTRES) as numbers, memory in MiB."""
    found: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
        if name == "mem" and value[-1:].upper() in units:
            found[name] = math.ceil(float(value[:-1]) * units[value[-1].upper()])
        elif value.isdigit():
            found[name] = int(value)
    return found


def looser_than(limits: LearnerLimits, association: dict[str, str]) -> list[str]:
    """What of an association (sacctmgr's fields: GrpTRES, MaxJobs, MaxSubmit, Partition) is
    looser than the workshop allows; a missing limit is looser than any."""
    tres = parse_tres(association.get("GrpTRES", ""))
    problems = []
    for name, allowed in (("cpu", limits.cpus), ("mem", limits.memory_mb)):
        if tres.get(name, math.inf) > allowed:
            problems.append(f"GrpTRES {name}={tres.get(name, 'none')} (the workshop allows {allowed})")
    for field, allowed in (("MaxJobs", limits.jobs), ("MaxSubmit", limits.submitted)):
        value = association.get(field, "")
        if not value.isdigit() or int(value) > allowed:
            problems.append(f"{field}={value or 'none'} (the workshop allows {allowed})")
    if limits.partition and association.get("Partition") != limits.partition:
        problems.append(
            f"partition {association.get('Partition') or 'any'} (the workshop's is {limits.partition})"
        )
    return problems


def slurm_conf_lines() -> list[str]:
    """What the site's slurm.conf needs for a workshop: a private /tmp per job (PrologFlags=Contain
    is job_container/tmpfs's requirement) and a private queue."""
    return [
        f"JobContainerType={JOB_CONTAINER}",
        "PrologFlags=Contain",
        f"PrivateData={','.join(PRIVATE_DATA)}",
    ]


def job_container_conf() -> str:
    """job_container.conf on every compute node: each job's /tmp under a local folder."""
    return f"AutoBasePath=true\nBasePath={JOB_CONTAINER_BASE}\n"


def missing_from_config(config: dict[str, str]) -> list[str]:
    """What `scontrol show config` (as name -> value) lacks of slurm_conf_lines()."""
    problems = []
    if config.get("JobContainerType") != JOB_CONTAINER:
        problems.append(
            f"JobContainerType is {config.get('JobContainerType') or 'unset'}, not {JOB_CONTAINER}: "
            "learners' jobs on one node share /tmp"
        )
    if "Contain" not in config.get("PrologFlags", ""):
        problems.append(f"PrologFlags lacks Contain, which {JOB_CONTAINER} needs")
    private = {part.strip() for part in config.get("PrivateData", "").split(",")}
    hidden = [item for item in PRIVATE_DATA if item not in private]
    if hidden:
        problems.append(
            f"PrivateData lacks {','.join(hidden)}: learners see each other's {', '.join(hidden)}"
        )
    return problems


def parse_show_config(text: str) -> dict[str, str]:
    """`scontrol show config` as name -> value."""
    config = {}
    for line in text.splitlines():
        name, separator, value = line.partition("=")
        if separator:
            config[name.strip()] = value.strip()
    return config
