"""The learner's server reads its own memory cgroup for the room view (dlworkshop_learner/memory.py):
limit, usage, peak and OOM kills on cgroup v2 and v1, inside a container's namespace (its cgroup
seen as the root) or outside it (a Slurm job's nested cgroup), and the notebooks its kernels run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dlworkshop_learner.memory import cgroup_memory, notebooks_of
from tests.conftest import docker_cli

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
    sessions: list[dict[str, Any]] = [
        {"path": "lessons/04-dollar-street.ipynb", "type": "notebook", "kernel": {"execution_state": "busy"}},
        {"path": "console-1", "type": "console", "kernel": {"execution_state": "idle"}},
        {"path": "scratch.ipynb", "kernel": None},
    ]
    assert notebooks_of(sessions) == [
        {"path": "lessons/04-dollar-street.ipynb", "state": "busy"},
        {"path": "scratch.ipynb", "state": None},
    ]


# Inside a learner container under a small quota: the server's endpoint before and after a process
# of the container (as a kernel would) is killed for memory, with a notebook's kernel open.
PROBE = """
import json, subprocess, time, urllib.request
def call(method, path, body=None, token="tok"):
    request = urllib.request.Request(
        "http://127.0.0.1:8888/api/" + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=30).read() or b"null")
for _ in range(90):
    try:
        before = call("GET", "dlworkshop/memory")
        break
    except OSError:
        time.sleep(1)
call("POST", "sessions", {"path": "04-dollar-street.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
killed = subprocess.run(["python", "-c", "x = bytearray(900 * 2**20)"]).returncode
after = call("GET", "dlworkshop/memory")
try:
    call("GET", "dlworkshop/memory", token="wrong")
    refused = None
except urllib.error.HTTPError as error:
    refused = error.code
print("PROBE " + json.dumps({"before": before, "killed": killed, "after": after, "refused": refused}))
"""


@pytest.mark.docker
@pytest.mark.image
def test_a_learner_servers_memory_endpoint_counts_a_kill_in_a_real_container(learner_image: str) -> None:
    name = f"dlworkshop-test-memory-{int(time.time())}"
    quota = 500 * M
    subprocess.run(
        [
            docker_cli(),
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--memory",
            str(quota),
            "--memory-swap",
            str(quota),
            learner_image,
            "jupyter",
            "server",
            "--ServerApp.token=tok",
            "--ServerApp.ip=127.0.0.1",
            "--port=8888",
        ],
        check=True,
        capture_output=True,
    )
    try:
        probe = subprocess.run(
            [docker_cli(), "exec", name, "python", "-c", PROBE], capture_output=True, text=True, timeout=300
        )
        lines = [line for line in probe.stdout.splitlines() if line.startswith("PROBE ")]
        assert lines, probe.stdout[-2000:] + probe.stderr[-2000:]
        said = json.loads(lines[-1].removeprefix("PROBE "))
        assert said["before"]["limit"] == quota and said["before"]["oom_kills"] == 0
        assert said["killed"] == -9
        after = said["after"]
        assert after["oom_kills"] == 1 and after["limit"] == quota
        assert after["notebooks"] == [
            {"path": "04-dollar-street.ipynb", "state": after["notebooks"][0]["state"]}
        ]
        assert said["refused"] == 403
    finally:
        subprocess.run([docker_cli(), "rm", "-f", name], capture_output=True)
