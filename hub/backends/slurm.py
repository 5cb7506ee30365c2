"""Learners' servers as Slurm jobs (batchspawner's SlurmSpawner), for a hub on a cluster's login node.

Each learner's server is a batch job under their own Unix account (dlw-01..N, mapped from their
workshop login by `ClusterAccountBook`), submitted by the unprivileged hub through sudo rules
limited to sbatch, squeue and scancel as those accounts. Slurm does what the Docker backend does by
hand: it picks the node and the GPUs (GRES), fences the devices a job was not granted, holds the
job to its memory, and queues a learner when the partition is full. The job's environment is the
learner image's, from shared storage (slurm.env_prefix) or from the image as a SIF (apptainer).

Three things batchspawner 1.3.0 gets wrong for a workshop, fixed here:
- a job that dies after it started RUNNING, before the server reported its port, left `start()`
  waiting until the start timeout (fixed upstream after 1.3.0, not released): the job is checked;
- any squeue error other than two known messages counted as a finished job, so a slurmctld restart
  could stop every learner's server: only "Invalid job id" (the job is gone) counts, any other
  error means "unknown", and the server stays;
- a job pending in Slurm's queue held the hub's admission place and counted against the start
  timeout: it gives the place back and stops the clock (`WorkshopSpawner.queued_in_engine`).

The only module of the hub that imports batchspawner.
"""

from __future__ import annotations

import asyncio
import pwd
import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

from batchspawner import JobStatus, SlurmSpawner
from tornado import web
from traitlets import Dict, Integer, List, Unicode, default

from dlworkshop import contract
from dlworkshop.slurm.apptainer import IMAGE_START, apptainer_command
from dlworkshop.slurm.environment import BATCHSPAWNER_DIR, START_SCRIPT
from dlworkshop.slurm.jobs import JOB_TMPDIR, JobRequest, account_names, gpu_memory_cap_mb, job_request
from hub.backends.base import Backend, LearnerServer, ServerState
from hub.backends.cluster_accounts import AccountsExhausted, ClusterAccountBook
from hub.spawning import WorkshopSpawner

# squeue's long state names -> the server's state.
_STATES: dict[str, ServerState] = {
    "PENDING": "starting",
    "CONFIGURING": "starting",
    "RUNNING": "running",
    "COMPLETING": "stopped",
}
# squeue's answer when it has no such job (ended long enough ago that slurmctld forgot it).
_GONE = "Invalid job id specified"
# Why a pending job waits, in squeue's words, when what it waits for is a GPU.
_WAITING_FOR_RESOURCES = {"Resources", "Priority", "QOSGrpGRES", "QOSMaxGRESPerUser", "GresResources"}
WORK_FOLDER_NAME = "work"

# batchspawner's SlurmSpawner template with its `{% if req %}` block for every req_* trait it reads
# kept, so a site's own c.SlurmSpawner.req_partition, req_gres, req_options... reach the job. Ours
# besides: the job's name (how the hub finds its learners' jobs), the learner's home and work
# folder, and lines for account and QOS, which batchspawner has traits for but no lines.
BATCH_SCRIPT = (
    """#!/bin/bash
#SBATCH --output={{homedir}}/.dlworkshop-slurm-%j.log
#SBATCH --chdir={{homedir}}
#SBATCH --export={{keepvars}}
"""
    + f"#SBATCH --job-name={contract.SLURM_JOB_NAME}\n"
    + """{% if nprocs %}#SBATCH --cpus-per-task={{nprocs}}
{% endif %}{% if memory %}#SBATCH --mem={{memory}}
{% endif %}{% if runtime %}#SBATCH --time={{runtime}}
{% endif %}{% if gres %}#SBATCH --gres={{gres}}
{% endif %}{% if partition %}#SBATCH --partition={{partition}}
{% endif %}{% if reservation %}#SBATCH --reservation={{reservation}}
{% endif %}{% if account %}#SBATCH --account={{account}}
{% endif %}{% if qos %}#SBATCH --qos={{qos}}
{% endif %}{% if options %}#SBATCH {{options}}
{% endif %}
set -euo pipefail
trap 'echo SIGTERM received' TERM
export HOME={{homedir}} USER={{username}} LOGNAME={{username}}
export {{work_env}}={{homedir}}/{{work_folder}}
# The job's own /tmp (job_container/tmpfs): no other job on the node sees it.
export TMPDIR={{tmpdir}}
mkdir -p "${{work_env}}"
{{prologue}}
# The server's output: its first {{log_max}} bytes kept in the job's log, the rest read and dropped
# (the server never blocks on a full pipe, and a loop printing forever cannot fill the home).
{% if srun %}{{srun}} {% endif %}{{cmd}} 2>&1 | {
  head -c {{log_max}}
  if IFS= read -r -n 1 _; then
    printf '\n%s\n' "dlworkshop: the server's output passed {{log_max}} bytes (resources.log_max); the rest is dropped"
    cat > /dev/null
  fi
}
echo "the learner's server ended"
{{epilogue}}
"""
)


def batchspawner_request(request: JobRequest) -> dict[str, str]:
    """The job request as the values of batchspawner's req_* traits ('' where nothing is asked)."""
    return {
        "nprocs": str(request.cpus_per_task),
        "memory": request.memory,
        "runtime": request.time_limit,
        "gres": request.gres or "",
        "partition": request.partition or "",
        "reservation": request.reservation or "",
        "account": request.account or "",
        "qos": request.qos or "",
    }


class WorkshopSlurmSpawner(WorkshopSpawner, SlurmSpawner):
    workshop_request = Dict(
        value_trait=Unicode(),
        config=True,
        help="The workshop's request for every learner's job (dlworkshop.slurm.jobs.JobRequest), by "
        "batchspawner's req_* names less the prefix (nprocs, memory, runtime, gres, partition, "
        "reservation, account, qos): the defaults of those traits, so a site's own "
        "c.SlurmSpawner.req_* (jupyterhub_config.d) wins wherever it sets one.",
    )
    batch_script = Unicode(
        BATCH_SCRIPT,
        config=True,
        help="batchspawner's SlurmSpawner template with the workshop's lines (BATCH_SCRIPT).",
    )
    req_srun = Unicode(
        "srun --export=ALL",
        config=True,
        help="The job step the server runs in, with the job's whole environment (sbatch --export).",
    )
    environment_kind = Unicode(
        "venv", config=True, help="venv: the learner environment on shared storage; apptainer: a SIF."
    )
    env_prefix = Unicode(config=True, help="Where every node sees the learner environment.")
    apptainer_image = Unicode("", config=True, help="environment apptainer: the SIF on shared storage.")
    cluster_accounts = List(
        Unicode(), config=True, help="The Unix accounts learners' jobs run under (dlw-01..N)."
    )
    accounts_file = Unicode(config=True, help="JSON file mapping workshop logins to cluster accounts.")
    home_template = Unicode(
        "",
        config=True,
        help="A learner account's home, {account} expanded; empty: from the account database (getpwnam).",
    )
    node_addresses = Dict(
        config=True,
        help="Node name -> address the hub reaches a learner's server at, where a node's name does "
        "not resolve from the hub (empty: the node name itself).",
    )
    gpu_memory_cap_mb = Integer(0, config=True, help="The learner's TensorFlow GPU memory cap (0: none).")
    server_wrapper = List(
        Unicode(),
        config=True,
        help="What runs the server's command inside the job (empty: the environment's start script, "
        "or apptainer exec of the SIF).",
    )
    squeue_format = Unicode("%T|%B|%r", help="squeue's fields for one job: state, host, reason.")
    log_max = Integer(
        30 * 2**20, config=True, help="Bytes of the server's output the job's log keeps (resources.log_max)."
    )

    # What Slurm last said of the job: long state name, node, pending reason; and its timing.
    slurm_state = Unicode("")
    slurm_node = Unicode("")
    slurm_reason = Unicode("")
    submitted_at = 0.0
    running_after = -1.0  # seconds in Slurm's queue, once it runs

    # ---- the job's request: the workshop's, unless the site set the trait ----------------
    @default("req_nprocs")
    def _req_nprocs_default(self) -> str:
        return self.workshop_request.get("nprocs", "")

    @default("req_memory")
    def _req_memory_default(self) -> str:
        return self.workshop_request.get("memory", "")

    @default("req_runtime")
    def _req_runtime_default(self) -> str:
        return self.workshop_request.get("runtime", "")

    @default("req_gres")
    def _req_gres_default(self) -> str:
        return self.workshop_request.get("gres", "")

    @default("req_partition")
    def _req_partition_default(self) -> str:
        return self.workshop_request.get("partition", "")

    @default("req_reservation")
    def _req_reservation_default(self) -> str:
        return self.workshop_request.get("reservation", "")

    @default("req_account")
    def _req_account_default(self) -> str:
        return self.workshop_request.get("account", "")

    @default("req_qos")
    def _req_qos_default(self) -> str:
        return self.workshop_request.get("qos", "")

    # ---- the learner's account -------------------------------------------------------------
    @property
    def account(self) -> str:
        book = ClusterAccountBook.at(Path(self.accounts_file), list(self.cluster_accounts))
        try:
            return book.account_for(self.user.name)
        except AccountsExhausted as exc:
            raise web.HTTPError(
                503, f"No cluster account is free for you: {exc}. Please tell a helper."
            ) from None

    @default("req_username")
    def _req_username_default(self) -> str:
        return self.account

    @default("req_homedir")
    def _req_homedir_default(self) -> str:
        account = self.account
        if self.home_template:
            return self.home_template.format(account=account)
        return pwd.getpwnam(account).pw_dir

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        # The job's account, not the workshop login (batchspawner reads the login's passwd entry).
        env["USER"] = self.req_username
        env["HOME"] = self.req_homedir
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.gpu_memory_cap_mb:
            env[contract.learner.GPU_MEMORY_ENV] = str(self.gpu_memory_cap_mb)
        return env

    # ---- the job ----------------------------------------------------------------------------
    def get_req_subvars(self) -> dict[str, Any]:
        subvars = super().get_req_subvars()
        subvars.update(
            work_env=contract.learner.WORK_ENV,
            work_folder=WORK_FOLDER_NAME,
            tmpdir=JOB_TMPDIR,
            log_max=self.log_max,
        )
        return subvars

    def cmd_formatted_for_batch(self) -> str:
        """The server's command inside the job: the image's start hook (thread pools from the CPUs
        Slurm granted, data links, lessons), then batchspawner's wrapper, which tells the hub the
        port it picked, around jupyterhub-singleuser (Spawner.cmd)."""
        server = [*self.cmd, *self.get_args()]
        if self.server_wrapper:
            return shlex.join([*self.server_wrapper, *server])
        if self.environment_kind == "apptainer":
            home = self.req_homedir
            return shlex.join(
                apptainer_command(
                    self.apptainer_image,
                    home,
                    f"{home}/{WORK_FOLDER_NAME}",
                    ["env", f"PYTHONPATH={self.env_prefix}/{BATCHSPAWNER_DIR}", *IMAGE_START, *server],
                    gpu=bool(self.req_gres),
                    binds=[self.env_prefix],
                )
            )
        return shlex.join([f"{self.env_prefix}/{START_SCRIPT}", *server])

    async def query_job_status(self) -> JobStatus:
        """The job's state from squeue. An error other than "no such job" (slurmctld restarting,
        unreachable, timing out) is UNKNOWN: the server is kept, and asked about again later."""
        if not self.job_id:
            self.job_status = ""
            return JobStatus.NOTFOUND
        subvars = self.get_req_subvars() | {"job_id": self.job_id}
        command = " ".join(
            (
                self._format(self.exec_prefix, subvars),
                f"squeue --noheader --jobs={shlex.quote(self.job_id)} --format={shlex.quote(self.squeue_format)}",
            )
        )
        try:
            self.job_status = await self.run_command(command)
        except RuntimeError as error:
            message = str(error)
            if _GONE in message:
                self.job_status = ""
                return JobStatus.NOTFOUND
            self.job_status = ""
            self.log.warning("squeue failed for job %s (%s): keeping the server", self.job_id, message)
            return JobStatus.UNKNOWN
        state, node, reason = [*self.job_status.strip().split("|"), "", "", ""][:3]
        self.slurm_state, self.slurm_reason = state, reason
        if state in ("RUNNING", "COMPLETING"):
            self.slurm_node = node
        if state == "RUNNING":
            return JobStatus.RUNNING
        if state in ("PENDING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED"):
            return JobStatus.PENDING
        return JobStatus.NOTFOUND  # COMPLETED, CANCELLED, FAILED, TIMEOUT..., or no line at all

    @staticmethod
    def _format(template: str, subvars: dict[str, Any]) -> str:
        from batchspawner.batchspawner import format_template

        return format_template(template, **subvars)

    def state_ispending(self) -> bool:
        return self.slurm_state in ("PENDING", "CONFIGURING")

    def state_isrunning(self) -> bool:
        return self.slurm_state == "RUNNING"

    def state_gethost(self) -> str:
        return self.node_addresses.get(self.slurm_node, self.slurm_node)

    async def start_engine(self) -> Any:
        """Submit, wait in Slurm's queue (outside the hub's admission, off the start's clock), then
        wait for the server's port, checking that the job still runs."""
        self.ip = "0.0.0.0"
        self.port = 0
        self.server.port = 0
        self.notebook_dir = f"{self.req_homedir}/{WORK_FOLDER_NAME}"
        self.slurm_state = self.slurm_node = self.slurm_reason = ""
        self.running_after = -1.0
        self.submitted_at = time.monotonic()
        await self.submit_batch_script()
        if not self.job_id:
            raise RuntimeError("sbatch gave no job id; the hub's log has its output")
        # The job's id into the hub's database now: a hub that restarts before the start ends
        # finds the job (to cancel it and ask again, hub/spawning.py) instead of leaving it unseen.
        self._save_state()
        status = await self.query_job_status()
        if status == JobStatus.PENDING:
            async with self.queued_in_engine():
                while status in (JobStatus.PENDING, JobStatus.UNKNOWN):
                    await asyncio.sleep(self.startup_poll_interval)
                    status = await self.query_job_status()
        while status == JobStatus.UNKNOWN:
            await asyncio.sleep(self.startup_poll_interval)
            status = await self.query_job_status()
        if status != JobStatus.RUNNING:
            self._job_ended()
        self.running_after = time.monotonic() - self.submitted_at
        self.ip = self.state_gethost()
        self.log.info(
            "%s: job %s runs on %s after %.0f s in the Slurm queue",
            self._log_name,
            self.job_id,
            self.slurm_node,
            self.running_after,
        )
        checked = time.monotonic()
        while self.port == 0:  # batchspawner-singleuser posts it to the hub's API
            await asyncio.sleep(self.startup_poll_interval)
            if time.monotonic() - checked > 2:
                checked = time.monotonic()
                if await self.query_job_status() == JobStatus.NOTFOUND:
                    self._job_ended()
        return self.ip, self.port

    async def stop(self, now: bool = False) -> None:
        if not self.job_id:  # it ended on its own (and its state was cleared): nothing to cancel
            return
        await super().stop(now=now)

    def _job_ended(self) -> None:
        log = f"{self.req_homedir}/.dlworkshop-slurm-{self.job_id}.log"
        self.clear_state()
        raise RuntimeError(f"the server exited while starting; its log says why ({log})")

    def engine_message(self) -> str | None:
        if self.slurm_state in ("PENDING", "CONFIGURING"):
            if self.req_gres and self.slurm_reason in _WAITING_FOR_RESOURCES:
                return (
                    "Your server is waiting for a GPU (queued in Slurm); it starts as soon as one is "
                    "free. Your place is kept; no need to reload."
                )
            return f"Your server is queued in Slurm ({self.slurm_reason or 'pending'}); it starts as soon as the cluster has room."
        if self.slurm_state == "RUNNING" and self.running_after >= 0:
            return contract.slurm_placed_message(self.job_id, self.slurm_node, self.running_after)
        if self.job_id:
            return f"Your server's job {self.job_id} is submitted to Slurm"
        return None

    def _progress_event(self) -> dict[str, Any] | None:
        # Once the job runs, the spawn page keeps saying where (the smoke test reads it there).
        if self.phase == "answering" and self.running_after >= 0:
            return {
                "progress": 70,
                "message": contract.slurm_placed_message(self.job_id, self.slurm_node, self.running_after)
                + "; waiting for JupyterLab to answer",
            }
        return super()._progress_event()


class SlurmBackend(Backend):
    name = "slurm"
    # Where squeue runs for `learner_servers` (a test runs it in the login node's container).
    command_prefix: ClassVar[list[str]] = []

    @property
    def spawner_class(self) -> type[WorkshopSpawner]:
        return WorkshopSlurmSpawner

    def configure_engine(self, c: Any) -> None:
        settings, slurm = self.settings, self.settings.slurm
        hub = settings.hub
        # The proxy serves learners on the login node (behind the TLS proxy); the hub's API listens
        # on every address, since batchspawner-singleuser on a compute node reports its port to it.
        c.JupyterHub.bind_url = f"http://{hub.bind}:{hub.port}"
        c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{contract.HUB_API_PORT}"
        c.JupyterHub.hub_connect_url = (
            f"http://{slurm.hub_address or socket.gethostname()}:{contract.HUB_API_PORT}"
        )
        # sudo as the learner's account: -n so a missing rule fails at once instead of prompting.
        c.SlurmSpawner.exec_prefix = "sudo -n -E -u {username}"
        c.Spawner.poll_interval = slurm.poll_interval
        c.Spawner.cmd = ["python", "-m", "batchspawner.singleuser", "jupyterhub-singleuser"]
        # Defaults of batchspawner's req_* traits, not the traits: a site's c.SlurmSpawner.req_*
        # (any section, before or after ours) is what the job asks for.
        c.WorkshopSlurmSpawner.workshop_request = batchspawner_request(job_request(settings))
        c.WorkshopSlurmSpawner.environment_kind = slurm.environment
        c.WorkshopSlurmSpawner.env_prefix = slurm.env_prefix
        c.WorkshopSlurmSpawner.apptainer_image = slurm.apptainer_image or ""
        c.WorkshopSlurmSpawner.cluster_accounts = account_names(settings)
        c.WorkshopSlurmSpawner.accounts_file = str(Path(contract.hub_data()) / contract.CLUSTER_ACCOUNTS_FILE)
        c.WorkshopSlurmSpawner.gpu_memory_cap_mb = gpu_memory_cap_mb(settings) or 0
        c.WorkshopSlurmSpawner.log_max = settings.resources.log_max
        # Into the job with the hub's own variables (sbatch --export of every name get_env gives).
        # Set only when asked for: an empty dict here would hide a site's own Spawner.environment.
        if settings.resources.extra_env:
            c.WorkshopSlurmSpawner.environment = dict(settings.resources.extra_env)

    def learner_servers(self) -> list[LearnerServer]:
        """This hub's learner jobs, from squeue, run as the hub's own user: the deploy makes it a
        coordinator of the workshop's Slurm account, which sees its jobs under PrivateData=jobs."""
        command = [
            *self.command_prefix,
            "squeue",
            "--noheader",
            f"--name={contract.SLURM_JOB_NAME}",
            "--format=%i|%u|%T|%N|%r",
        ]
        lines = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
        book = ClusterAccountBook.at(
            Path(contract.hub_data()) / contract.CLUSTER_ACCOUNTS_FILE, account_names(self.settings)
        )
        servers = []
        for line in lines.splitlines():
            job_id, account, state, node, reason = line.strip().split("|")
            servers.append(
                LearnerServer(
                    user=book.login_of(account) or account,
                    engine_id=job_id,
                    state=_STATES.get(state, "stopped"),
                    node=node or None,
                    labels={"account": account, "reason": reason},
                )
            )
        return servers
