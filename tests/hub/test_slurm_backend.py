"""The Slurm backend's own behaviour, with Slurm's commands answered by a script (the real cluster
runs the same spawner in tests/hub/test_backend_interface.py and tests/slurm/): the batch script it
submits, what squeue's answers mean, the job that dies after it started running, the spawn page's
message while queued, and the learners' accounts."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from dlworkshop import contract
from dlworkshop.settings import parse_settings
from dlworkshop.slurm.apptainer import apptainer_command
from hub.backends.cluster_accounts import AccountsExhausted, ClusterAccountBook
from hub.backends.slurm import SlurmBackend, WorkshopSlurmSpawner
from hub.spawning import START_STATE_KEY, WorkshopSpawner
from tests.hub.test_backend_interface import Engine, _restart_the_hub

SETTINGS = (
    "auth: {mode: shared-code, access_code: x}\nresources: {cpu: 0.5, memory: 1536M, "
    "gpu: {policy: whole, per_learner: 1}}\nhub: {backend: slurm}\n"
    "slurm: {partition: gpu, qos: workshop, env_prefix: /shared/env, accounts: {count: 2}}\n"
)


class Slurm:
    """squeue's and sbatch's answers, in order; what was asked is kept."""

    def __init__(self) -> None:
        self.answers: list[str | Exception] = []
        self.asked: list[tuple[str, str | None]] = []

    async def run_command(self, command: str, input: str | None = None, env: Any = None) -> str:
        self.asked.append((command, input))
        if "sbatch" in command:
            return "4242"
        if "scancel" in command:
            return ""
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def slurm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Slurm]:
    fake = Slurm()
    monkeypatch.setattr(WorkshopSlurmSpawner, "run_command", lambda self, *a, **k: fake.run_command(*a, **k))
    monkeypatch.setattr(WorkshopSpawner, "_admission", None)
    monkeypatch.setenv(contract.HUB_HOME_ENV, str(tmp_path))
    yield fake


def spawner(name: str = "ada", **traits: Any) -> Any:
    engine = Engine(SlurmBackend(parse_settings(SETTINGS)), failing=lambda c: None)
    c: Config = engine.config()
    c.WorkshopSlurmSpawner.home_template = "/home/{account}"
    c.WorkshopSlurmSpawner.startup_poll_interval = 0.01
    for key, value in traits.items():
        setattr(c.WorkshopSlurmSpawner, key, value)
    return engine.spawner(c, name)


def test_the_batch_script_asks_for_the_quota_and_runs_the_environments_start_hook(slurm: Slurm) -> None:
    learner = spawner()
    slurm.answers = ["RUNNING|node1|None"]
    learner.port = 0

    async def scenario() -> None:
        starting = asyncio.ensure_future(learner.start_engine())
        await asyncio.sleep(0.2)
        learner.port = 4321  # batchspawner-singleuser posts it
        assert await starting == ("node1", 4321)

    asyncio.run(scenario())
    command, script = slurm.asked[0]
    assert command == "sudo -n -E -u dlw-01 sbatch --parsable"
    assert script is not None
    for line in (
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=1536M",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --partition=gpu",
        "#SBATCH --qos=workshop",
        f"#SBATCH --job-name={contract.SLURM_JOB_NAME}",
        "#SBATCH --chdir=/home/dlw-01",
        "export HOME=/home/dlw-01 USER=dlw-01 LOGNAME=dlw-01",
        "srun --export=ALL /shared/env/start-server python -m batchspawner.singleuser jupyterhub-singleuser",
    ):
        assert line in script, script
    assert learner.notebook_dir == "/home/dlw-01/work"
    assert learner.get_env()["JUPYTERHUB_ROOT_DIR"] == "/home/dlw-01/work"
    # Scratch in the job's private /tmp; the server's output bounded by resources.log_max.
    assert "export TMPDIR=/tmp" in script
    assert f"head -c {30 * 2**20}" in script


def test_the_jobs_log_keeps_at_most_log_max_of_the_servers_output(tmp_path: Path) -> None:
    """The batch script's pipe, run with a server that prints ten times the cap: the log keeps the
    cap and one line saying the rest was dropped, and the server ran to its end."""
    import subprocess

    learner = spawner(log_max=4096)
    learner.cmd = [
        "python3",
        "-c",
        "import sys; sys.stdout.write('x' * 40960); print('server done', file=sys.stderr)",
    ]
    script = learner._format(
        learner.batch_script, learner.get_req_subvars() | {"cmd": learner.cmd_formatted_for_batch()}
    )
    pipe = script[script.index("srun --export=ALL") : script.index('echo "the learner')]
    pipe = pipe.replace("srun --export=ALL /shared/env/start-server ", "")
    log = tmp_path / "job.log"
    ran = subprocess.run(["bash", "-c", f"set -euo pipefail\n{pipe}"], stdout=log.open("wb"), timeout=60)
    assert ran.returncode == 0
    kept = log.read_bytes()
    assert kept[:4097] == b"x" * 4096 + b"\n"
    assert kept[4097:].startswith(b"dlworkshop: the server's output passed 4096 bytes")
    assert len(kept) < 4096 + 200


def batch_script(learner: Any) -> str:
    """The script `sbatch` would get for this learner (batchspawner's own rendering)."""
    subvars = learner.get_req_subvars() | {"cmd": learner.cmd_formatted_for_batch()}
    return asyncio.run(learner._get_batch_script(**subvars))


def test_a_sites_own_slurmspawner_settings_win_and_the_workshops_fill_the_rest(slurm: Slurm) -> None:
    """batchspawner's req_* traits: the workshop's request is their default, so what a site sets in
    jupyterhub_config.d (any section, before or after the workshop's configuration) is asked for."""
    engine = Engine(SlurmBackend(parse_settings(SETTINGS)), failing=lambda c: None)
    c = Config()
    c.SlurmSpawner.req_partition = "site-partition"  # set before the workshop's configuration
    engine.backend.configure(c)
    c.SlurmSpawner.req_options = "--comment=site"  # and after it, as a jupyterhub_config.d file
    c.BatchSpawnerBase.req_runtime = "0:30:00"
    c.WorkshopSlurmSpawner.home_template = "/home/{account}"
    learner = engine.spawner(c, "ada")
    assert learner.req_partition == "site-partition"
    script = batch_script(learner)
    for line in ("#SBATCH --partition=site-partition", "#SBATCH --comment=site", "#SBATCH --time=0:30:00"):
        assert line in script, script
    assert "--partition=gpu" not in script and "--time=8:00:00" not in script
    # What the site left alone is the workshop's.
    for line in (
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=1536M",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --qos=workshop",
    ):
        assert line in script, script


def test_a_site_that_asks_for_no_gpu_gets_a_job_without_one(slurm: Slurm) -> None:
    learner = spawner(req_gres="")
    script = batch_script(learner)
    assert "--gres" not in script
    learner.slurm_state, learner.slurm_reason = "PENDING", "Resources"
    message = learner.engine_message()
    assert message is not None and "waiting for a GPU" not in message
    assert "--nv" not in spawner(environment_kind="apptainer", req_gres="").cmd_formatted_for_batch()


def test_the_batch_script_keeps_every_block_of_batchspawners_own() -> None:
    """batchspawner's SlurmSpawner template, with lines of the workshop's: every req_* it reads
    (`{% if gres %}#SBATCH --gres={{gres}}`...) reads the same here, srun included."""
    from batchspawner import SlurmSpawner

    from hub.backends.slurm import BATCH_SCRIPT

    theirs = SlurmSpawner.class_traits()["batch_script"].default_value
    blocks = re.findall(r"\{% if (\w+) *%\}(#SBATCH [^\n{]*|\{\{\w+\}\} )", theirs)
    assert {name for name, _ in blocks} >= {
        "partition",
        "runtime",
        "memory",
        "gres",
        "nprocs",
        "options",
        "srun",
    }
    for name, line in blocks:
        assert f"{{% if {name} %}}{line}" in BATCH_SCRIPT, name


def test_resources_extra_env_is_in_the_jobs_environment(slurm: Slurm) -> None:
    settings = parse_settings(
        SETTINGS.replace("resources: {", "resources: {extra_env: {HF_HUB_OFFLINE: '1'}, ")
    )
    engine = Engine(SlurmBackend(settings), failing=lambda c: None)
    c: Config = engine.config()
    c.WorkshopSlurmSpawner.home_template = "/home/{account}"
    learner = engine.spawner(c, "ada")
    assert learner.get_env()["HF_HUB_OFFLINE"] == "1"
    # sbatch --export names it, so the job (and srun --export=ALL) carries it to the server.
    assert "HF_HUB_OFFLINE" in learner.get_req_subvars()["keepvars"].split(",")


def test_squeue_errors_keep_the_server_and_only_a_gone_job_ends_it(slurm: Slurm) -> None:
    learner = spawner()
    learner.job_id = "4242"

    async def poll(answer: str | Exception) -> Any:
        slurm.answers = [answer]
        return await learner.poll()

    async def scenario() -> None:
        unreachable = RuntimeError(
            "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
        )
        assert await poll(unreachable) is None
        other = RuntimeError("squeue: error: Zero Bytes were transmitted or received")
        assert await poll(other) is None
        assert await poll("RUNNING|node2|None") is None
        assert learner.job_id == "4242"
        assert await poll(RuntimeError("slurm_load_jobs error: Invalid job id specified")) == 1
        assert learner.job_id == ""  # its state cleared: the hub shows the server as stopped
        learner.job_id = "4242"
        assert await poll("CANCELLED|node2|None") == 1

    asyncio.run(scenario())


def test_a_job_that_dies_after_it_started_running_fails_the_start_at_once(slurm: Slurm) -> None:
    """batchspawner 1.3.0 waits for the port until the start timeout; the job is checked instead."""
    learner = spawner()
    slurm.answers = ["RUNNING|node1|None", "RUNNING|node1|None", "FAILED|node1|NonZeroExitCode"]

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match=r"exited while starting.*\.dlworkshop-slurm-4242\.log"):
            await asyncio.wait_for(learner.start_engine(), timeout=10)

    asyncio.run(scenario())


def test_a_start_queued_for_a_gpu_says_so_and_gives_its_admission_place_back(slurm: Slurm) -> None:
    learner = spawner(start_capacity=1)
    slurm.answers = ["PENDING|n/a|Resources"]

    async def scenario() -> None:
        starting = asyncio.ensure_future(learner.start())
        for _ in range(100):
            await asyncio.sleep(0.01)
            if learner.slurm_state == "PENDING":
                break
        event = learner._progress_event()
        assert event is not None and "waiting for a GPU (queued in Slurm)" in event["message"]
        assert learner.admission.starting == set()  # the next learner may submit meanwhile
        slurm.answers = ["RUNNING|node2|None"]
        await asyncio.sleep(0.1)
        placed = learner._progress_event()
        assert placed is not None
        assert contract.SLURM_PLACED.search(placed["message"]).group("node") == "node2"
        starting.cancel()

    asyncio.run(scenario())


def test_logins_map_to_accounts_that_stay_theirs(tmp_path: Path) -> None:
    book = ClusterAccountBook(tmp_path / "accounts.json", ["dlw-01", "dlw-02"])
    assert book.account_for("ada") == "dlw-01"
    assert book.account_for("seat-01") == "dlw-02"
    assert book.account_for("ada") == "dlw-01"
    with pytest.raises(AccountsExhausted, match="all 2 cluster accounts"):
        book.account_for("cy")
    reread = ClusterAccountBook(tmp_path / "accounts.json", ["dlw-01", "dlw-02"])
    assert reread.account_for("seat-01") == "dlw-02" and reread.login_of("dlw-01") == "ada"
    assert json.loads((tmp_path / "accounts.json").read_text()) == {"ada": "dlw-01", "seat-01": "dlw-02"}


def test_the_hub_listens_for_the_nodes_and_polls_at_the_settings_interval() -> None:
    c = Config()
    settings = parse_settings(
        SETTINGS.replace("accounts: {count: 2}", "hub_address: login1, poll_interval: 15")
    )
    SlurmBackend(settings).configure(c)
    assert c.JupyterHub.hub_connect_url == f"http://login1:{contract.HUB_API_PORT}"
    assert c.JupyterHub.hub_bind_url == f"http://0.0.0.0:{contract.HUB_API_PORT}"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.Spawner.poll_interval == 15
    assert c.SlurmSpawner.exec_prefix == "sudo -n -E -u {username}"


def test_apptainer_runs_the_image_with_the_nv_flag_and_the_learners_home() -> None:
    command = apptainer_command(
        "/shared/learner.sif", "/home/dlw-01", "/home/dlw-01/work", ["python", "-V"], gpu=True,
        binds=["/shared/env"],
    )  # fmt: skip
    assert command == [
        "apptainer", "exec", "--nv", "--no-home", "--bind", "/home/dlw-01:/home/dlw-01",
        "--bind", "/shared/env:/shared/env:ro", "--pwd", "/home/dlw-01/work", "--env", "HOME=/home/dlw-01",
        "/shared/learner.sif", "python", "-V",
    ]  # fmt: skip
    assert "--nv" not in apptainer_command("/s.sif", "/h", "/h/work", ["true"], gpu=False)
    apptainer = spawner(environment_kind="apptainer", apptainer_image="/shared/learner.sif")
    line = apptainer.cmd_formatted_for_batch()
    assert line.startswith("apptainer exec --nv --no-home --bind /home/dlw-01:/home/dlw-01")
    assert (
        "env PYTHONPATH=/shared/env/batchspawner python -m dlworkshop_learner.start python -m batchspawner.singleuser"
        in line
    )


def test_the_learner_environment_pins_the_hubs_batchspawner() -> None:
    repo = Path(__file__).resolve().parents[2]
    hub_lock = (repo / "hub/requirements.lock").read_text()
    learner_lock = (repo / "dlworkshop/slurm/requirements-learner.lock").read_text()
    assert "batchspawner==1.3.0" in hub_lock and "batchspawner==1.3.0" in learner_lock


def test_a_job_a_hub_restart_interrupted_is_cancelled_and_asked_for_again(
    slurm: Slurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's id is in the hub's database as soon as sbatch gives it, so a restarted hub finds
    the job; it cannot know the port the job reported once, so it cancels the job (never left
    running unseen) and asks for the start again, its place in the queue kept."""
    learner = spawner(start_capacity=1)
    slurm.answers = ["PENDING|n/a|Resources"]

    async def before_the_restart() -> None:
        starting = asyncio.ensure_future(learner.start())
        for _ in range(100):
            await asyncio.sleep(0.01)
            if learner.slurm_state == "PENDING":
                break
        starting.cancel()  # the hub process ends (its database stays)
        await asyncio.gather(starting, return_exceptions=True)

    asyncio.run(before_the_restart())
    assert learner.orm_spawner.state["job_id"] == "4242"
    assert START_STATE_KEY in learner.orm_spawner.state
    asked = _restart_the_hub(monkeypatch)
    again = Engine(SlurmBackend(parse_settings(SETTINGS)), failing=lambda c: None).restarted(learner)

    async def after_the_restart() -> None:
        assert await again.poll() is not None  # not adopted: JupyterHub cleans up the rest
        await asyncio.sleep(0.1)  # it asks again in the background
        assert asked == ["ada"]
        assert again.admission.requested(again.admission_key) is not None

    asyncio.run(after_the_restart())
    assert [command for command, _ in slurm.asked if "scancel" in command] == [
        "sudo -n -E -u dlw-01 scancel 4242"
    ]
