"""What each learner's Slurm account may hold (dlworkshop.slurm.limits): the limits the deploy sets
on their association, how it finds the associations to add or correct, and what `verify` calls
looser than the workshop; the slurm.conf lines `check` prints and `verify` reads back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dlworkshop.settings import parse_settings
from dlworkshop.slurm.limits import (
    association_changes,
    learner_limits,
    looser_than,
    missing_from_config,
    parse_associations,
    parse_show_config,
    parse_tres,
)

BASE = (
    "auth: {mode: shared-code, access_code: x}\nhub: {backend: slurm}\nresources: {cpu: 0.5, memory: 900M}\n"
)


def test_a_learner_may_hold_their_server_and_what_learner_jobs_adds() -> None:
    alone = learner_limits(parse_settings(BASE + "slurm: {partition: gpu, account: workshop}\n"))
    assert (alone.cpus, alone.memory_mb, alone.jobs, alone.submitted, alone.partition) == (
        1,
        900,
        1,
        2,
        "gpu",
    )
    assert alone.sacctmgr_set() == ["GrpTRES=cpu=1,mem=900", "MaxJobs=1", "MaxSubmitJobs=2"]
    two_more = learner_limits(parse_settings(BASE + "slurm: {learner_jobs: 2}\n"))
    assert (two_more.cpus, two_more.memory_mb, two_more.jobs, two_more.partition) == (3, 2700, 3, None)


def test_the_deploy_adds_missing_associations_and_corrects_loose_ones_only() -> None:
    limits = learner_limits(parse_settings(BASE + "slurm: {partition: gpu, account: workshop}\n"))
    listed = "\n".join(
        [
            "||||",  # the account's own association
            "dlw-01|gpu|cpu=1,mem=900M|1|2",  # as the workshop wants
            "dlw-02|gpu|cpu=4|1|2",  # loose
            "dlw-03||cpu=1,mem=900M|1|2",  # in every partition, not the workshop's
        ]
    )
    changes = association_changes(listed, ["dlw-01", "dlw-02", "dlw-03", "dlw-04"], limits)
    assert changes == {"add": ["dlw-03", "dlw-04"], "modify": ["dlw-02"]}
    rows = {(row["User"], row["Partition"]): row for row in parse_associations(listed)}
    assert looser_than(limits, rows[("dlw-01", "gpu")]) == []
    assert looser_than(limits, rows[("dlw-02", "gpu")]) == [
        "GrpTRES cpu=4 (the workshop allows 1)",
        "GrpTRES mem=none (the workshop allows 900)",
    ]
    assert looser_than(limits, rows[("dlw-03", "")]) == ["partition any (the workshop's is gpu)"]
    assert parse_tres("cpu=2,mem=2G") == {"cpu": 2, "mem": 2048}


def test_verify_names_each_missing_slurm_conf_line() -> None:
    good = parse_show_config(
        "JobContainerType        = job_container/tmpfs\nPrologFlags             = Alloc,Contain\n"
        "PrivateData             = jobs,usage,users\n"
    )
    assert missing_from_config(good) == []
    bare = parse_show_config("JobContainerType        = (null)\nPrivateData             = none\n")
    problems = missing_from_config(bare)
    assert len(problems) == 3
    assert "learners' jobs on one node share /tmp" in problems[0]
    assert "PrivateData lacks jobs,usage,users" in problems[2]


def test_check_prints_the_learners_limits_and_the_slurm_conf_lines(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    # 1G: the lesson's largest taught episode fits (check refuses a quota it cannot teach in).
    config.write_text(BASE.replace("900M", "1G") + "slurm: {partition: gpu, account: workshop}\n")
    result = subprocess.run(
        [sys.executable, "-m", "dlworkshop", "check", "-c", str(config), "--node-count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "each learner's association in account workshop (the deploy sets it): at most 1 CPUs, 1024 MiB, "
        "1 job(s) running and 2 submitted in partition gpu" in result.stdout
    )
    assert (
        "JobContainerType=job_container/tmpfs PrologFlags=Contain PrivateData=jobs,usage,users"
        in result.stdout
    )
    assert "logs: a learner's job keeps at most 30M of its server's output" in result.stdout
