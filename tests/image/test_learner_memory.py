"""The learner's server reads its own memory cgroup for the room view (dlworkshop_learner/memory.py):
limit, usage, peak and OOM kills on cgroup v2 and v1, inside a container's namespace (its cgroup
seen as the root) or outside it (a Slurm job's nested cgroup), and the notebooks its kernels run."""

from __future__ import annotations

from pathlib import Path

from dlworkshop_learner.memory import cgroup_memory, notebooks_of

M = 2**20


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_cgroup_v2_in_a_containers_namespace(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/\n")
    _write(
        tmp_path / "fs",
        {
            "memory.max": f"{640 * M}\n",
            "memory.current": f"{500 * M}\n",
            "memory.peak": f"{639 * M}\n",
            "memory.events": "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
        },
    )
    assert cgroup_memory(tmp_path / "fs", proc) == {
        "limit": 640 * M,
        "usage": 500 * M,
        "peak": 639 * M,
        "oom_kills": 2,
    }


def test_cgroup_v2_without_a_limit_or_a_peak_file_says_none(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/system.slice/job.scope\n")
    _write(
        tmp_path / "fs" / "system.slice" / "job.scope",
        {"memory.max": "max\n", "memory.current": "1000\n", "memory.events": "oom_kill 0\n"},
    )
    assert cgroup_memory(tmp_path / "fs", proc) == {
        "limit": None,
        "usage": 1000,
        "peak": None,
        "oom_kills": 0,
    }


def test_cgroup_v1_a_slurm_steps_nested_cgroup(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text(
        "12:cpu,cpuacct:/slurm/uid_1001/job_7/step_batch\n"
        "5:memory:/slurm/uid_1001/job_7/step_batch\n"
        "1:name=systemd:/\n"
    )
    _write(
        tmp_path / "fs" / "memory" / "slurm" / "uid_1001" / "job_7" / "step_batch",
        {
            "memory.limit_in_bytes": f"{2048 * M}\n",
            "memory.usage_in_bytes": f"{300 * M}\n",
            "memory.max_usage_in_bytes": f"{1900 * M}\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        },
    )
    assert cgroup_memory(tmp_path / "fs", proc) == {
        "limit": 2048 * M,
        "usage": 300 * M,
        "peak": 1900 * M,
        "oom_kills": 1,
    }


def test_cgroup_v1_unlimited_and_no_cgroup_at_all(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("5:memory:/docker/abc\n")
    # In the container's namespace the path names the host's folder, which is not there.
    _write(
        tmp_path / "fs" / "memory",
        {
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.usage_in_bytes": "10\n",
            "memory.max_usage_in_bytes": "20\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n",
        },
    )
    assert cgroup_memory(tmp_path / "fs", proc) == {"limit": None, "usage": 10, "peak": 20, "oom_kills": None}
    assert cgroup_memory(tmp_path / "none", tmp_path / "no-proc") == {
        "limit": None,
        "usage": None,
        "peak": None,
        "oom_kills": None,
    }


def test_the_notebooks_the_kernels_run() -> None:
    sessions = [
        {"path": "lessons/04-dollar-street.ipynb", "type": "notebook", "kernel": {"execution_state": "busy"}},
        {"path": "console-1", "type": "console", "kernel": {"execution_state": "idle"}},
        {"path": "scratch.ipynb", "kernel": None},
    ]
    assert notebooks_of(sessions) == [
        {"path": "lessons/04-dollar-street.ipynb", "state": "busy"},
        {"path": "scratch.ipynb", "state": None},
    ]
