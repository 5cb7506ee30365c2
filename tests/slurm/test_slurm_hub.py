"""The workshop on the Slurm test cluster, end to end: `dlworkshop deploy` with a cluster inventory
puts the hub on the login node (systemd, TLS proxy), the learners' accounts on every node and the
learner environment (copied out of the learner image) on shared storage; then learners use it.

One cluster, one deploy and one hub for the module, in order: deploy, verify, a second deploy that
changes nothing; a learner in a browser; whole GPUs (four learners, four distinct devices, a fifth
queued until one stops); the quota from a terminal; private homes; scancel; hub and slurmctld
restarts; then shared GPUs (shards), the smoke test and the load test."""

from __future__ import annotations

import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dlworkshop import contract
from dlworkshop.clients.smoke.jupyter import JupyterServer, run_code
from dlworkshop.docker_host.hub_runtime import hub_settings, hub_settings_yaml
from dlworkshop.hubclient import HubClient
from dlworkshop.settings import load_settings
from dlworkshop.slurm.jobs import account_names
from dlworkshop.slurm.limits import learner_limits
from tests.fixtures.hub import SITE_HUB_CONFIG
from tests.fixtures.slurm import ENV_VOLUME, NETWORK, OTHER_PARTITION, SlurmCluster, docker, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.docker, pytest.mark.ansible, pytest.mark.slow]

ACCESS_CODE = "slurm-test-code"
LEARNER_TAG = "dlw-slurm/learner:e2e"
LOADTEST_REPORT_ENV = "DLWORKSHOP_SLURM_LOADTEST_REPORT"
HUB_TAG = "dlw-slurm/hub:e2e"
HUB_USER = "dlworkshop-hub"
# Whole GPUs first; the shared-GPU tests at the end switch the hub's settings to shards.
WORKSHOP = """\
workshop: {{name: dlworkshop on Slurm}}
learners: {{count: 12}}
auth: {{mode: shared-code, access_code: {code}, admins: [instructor]}}
image: {{name: {learner_name}, tag: {learner_tag}}}
resources: {{cpu: 0.5, memory: 1G, gpu: {gpu}}}
prewarm: {{seats: 0}}
hub:
  backend: slurm
  image: {hub_image}
  start_capacity: 4
  tls: {{mode: self-signed, domain: localhost}}
  extra_config: {site_config}
slurm:
  partition: {partition}
  account: {account}
  qos: {qos}
  poll_interval: 5
  hub_address: {login}
  time_limit: "2:00:00"
"""
WHOLE = "{policy: whole, per_learner: 1}"
SHARED = "{policy: shared, per_learner: 1/2, memory_mb: 16000}"
# The smoke and load tests run without GPUs: TensorFlow sees none behind the fake devices, and the
# smoke test would rightly fail its "GPU visible" check.
NO_GPU = "{policy: none}"
# A file a site adds to the hub's jupyterhub_config.d (beside the deployed 50-site.py of
# tests/fixtures/site_hub_config): its own partition for the learners' jobs.
SITE_PARTITION = "site"
SITE_PARTITION_FILE = f"c.SlurmSpawner.req_partition = {SITE_PARTITION!r}\n"
# Run in a learner's kernel: which GPU Slurm granted, and what opening each device node gives.
DEVICES = """
import errno, os
print("node", os.uname().nodename, "gpus", os.environ.get("SLURM_JOB_GPUS"), "cuda", os.environ.get("CUDA_VISIBLE_DEVICES"), "uid", os.getuid())
for minor in (0, 1):
    try:
        os.close(os.open(f"/dev/nvidia{minor}", os.O_RDWR))
        print(f"nvidia{minor}", "opened")
    except OSError as error:
        print(f"nvidia{minor}", errno.errorcode[error.errno])
"""


def secret_of(name: str) -> str:
    """The secret a test learner's first login claims their name with (shared-code mode)."""
    return f"secret-of-{name}"


@dataclass
class ClusterHub:
    cluster: SlurmCluster
    url: str
    config: Path
    inventory: Path

    def dlworkshop(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dlworkshop", *args], capture_output=True, text=True, timeout=timeout
        )

    def client(self, name: str) -> HubClient:
        """A learner logged in through the TLS endpoint (the self-signed certificate trusted)."""
        client = HubClient(self.url)
        client.login(name, ACCESS_CODE, secret_of(name))
        client.use_token(client.create_token(name, "slurm test"))
        return client

    def start(self, name: str, timeout: float = 300) -> HubClient:
        client = self.client(name)
        client.spawn(name, timeout)
        return client

    def run(self, client: HubClient, name: str, code: str) -> str:
        token = client.create_token(name, "slurm test kernel")
        kernel = client.start_kernel(name)
        server = JupyterServer(f"{self.url}/user/{name}/", token, timeout=60)
        # In a thread of its own: the browser fixture's Playwright holds this thread's event loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(run_code, server, kernel, code, 180).result()

    def account_of(self, name: str) -> str:
        book = self.cluster.run(
            self.cluster.login,
            f"cat {contract.cluster_hub_home(HUB_USER)}/data/{contract.CLUSTER_ACCOUNTS_FILE}",
        )
        return json.loads(book.stdout)[name]

    def jobs(self) -> dict[str, Any]:
        """The learners' jobs by account (squeue, as the site's admin sees them)."""
        return {job.user: job for job in self.cluster.squeue() if job.state in ("RUNNING", "PENDING")}

    def use_settings(self, gpu: str) -> None:
        """Change the hub's GPU policy as a redeploy would: its settings file, then a restart."""
        if f"gpu: {gpu}" in self.config.read_text():
            return
        text = self.config.read_text().replace(WHOLE, gpu).replace(SHARED, gpu)
        self.config.write_text(text)
        rendered = hub_settings_yaml(hub_settings(load_settings(self.config)))
        path = f"{contract.cluster_hub_home(HUB_USER)}/workshop.yaml"
        self.cluster.run(self.cluster.login, f"printf %s {shlex.quote(rendered)} > {path}")
        self.restart_hub()

    def restart_hub(self) -> None:
        self.cluster.run(self.cluster.login, "systemctl restart dlworkshop-hub")
        wait_until(
            lambda: (
                self.cluster.run(
                    self.cluster.login, "curl -fsS http://127.0.0.1:8000/hub/health", check=False
                ).returncode
                == 0
            ),
            90,
            "the hub to answer after its restart",
        )


def container_ip(cluster: SlurmCluster, node: str) -> str:
    networks = json.loads(
        docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", cluster.container(node)).stdout
    )
    return networks[NETWORK]["IPAddress"]


@pytest.fixture(scope="module")
def cluster_hub(
    slurm_cluster: SlurmCluster, learner_image: str, hub_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterHub]:
    """The cluster with the workshop deployed by `dlworkshop deploy` (first deploy, through the CLI)."""
    cluster = slurm_cluster
    # Tags of this module's own: other test sessions may rebuild the shared ones meanwhile, and a
    # changed image is rightly a change for the second deploy.
    for image, tag in ((learner_image, LEARNER_TAG), (hub_image, HUB_TAG)):
        docker("tag", image, tag)
    learner_image, hub_image = LEARNER_TAG, HUB_TAG
    folder = tmp_path_factory.mktemp("slurm-hub")
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    # /home is shared by every node: one authorized_keys lets the deploy in everywhere.
    cluster.copy_in(Path(f"{key}.pub"), "/home/admin/.ssh/authorized_keys", nodes=[cluster.login])
    cluster.run(
        cluster.login,
        "chown admin:admin /home/admin/.ssh/authorized_keys && chmod 0600 /home/admin/.ssh/authorized_keys",
    )
    hosts = {node: container_ip(cluster, node) for node in cluster.nodes}
    common = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    inventory = folder / "inventory.yml"
    lines = []
    for group, members in (("workshop_login", [cluster.login]), ("workshop_compute", cluster.compute_nodes)):
        lines += [f"{group}:", "  hosts:"]
        for node in members:
            lines += [
                f"    {node}:",
                f"      ansible_host: {hosts[node]}",
                "      ansible_user: admin",
                f"      ansible_ssh_private_key_file: {key}",
                f"      ansible_ssh_common_args: {common}",
            ]
    inventory.write_text("\n".join(lines) + "\n")
    learner_name, learner_tag = learner_image.rsplit(":", 1)
    config = folder / "workshop.yaml"
    config.write_text(
        WORKSHOP.format(
            code=ACCESS_CODE,
            learner_name=learner_name,
            learner_tag=learner_tag,
            hub_image=hub_image,
            gpu=WHOLE,
            partition=cluster.partition,
            account=cluster.account,
            qos=cluster.qos,
            login=cluster.login,
            site_config=SITE_HUB_CONFIG,
        )
    )
    wait_until(
        lambda: (
            subprocess.run(
                [
                    "ssh",
                    "-i",
                    str(key),
                    *common.split(),
                    "-o",
                    "BatchMode=yes",
                    f"admin@{hosts[cluster.login]}",
                    "true",
                ],
                capture_output=True,
            ).returncode
            == 0
        ),
        60,
        "sshd on the login node",
    )
    _, port = cluster.published(443)
    hub = ClusterHub(cluster, f"https://localhost:{port}", config, inventory)
    # The shared environment volume filled from the built learner image, as a site fills its shared
    # storage with `dlworkshop env install` (about 30 s here); the deploy then finds this image's
    # environment there and copies nothing (its copy of the same tree over SSH takes minutes).
    started = time.monotonic()
    mountpoint = docker("volume", "inspect", "-f", "{{.Mountpoint}}", ENV_VOLUME).stdout.strip()
    filled = hub.dlworkshop(
        "env", "install", "--prefix", cluster.env_prefix, "--dest", mountpoint, "--image", learner_image
    )
    assert filled.returncode == 0, filled.stdout + filled.stderr
    print(f"\nlearner environment installed in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    result = hub.dlworkshop("deploy", "-i", str(inventory), "-c", str(config))
    print(f"\nfirst deploy: {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "the hub is at https://localhost" in result.stdout
    # Clients in this process trust the hub's self-signed certificate (and what they trusted before).
    certificate = cluster.run(cluster.login, "cat /etc/dlworkshop/tls/self-signed/fullchain.pem").stdout
    bundle = folder / "trusted.pem"
    bundle.write_text(
        Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt").read_text()
        + certificate
    )
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(bundle)
    try:
        yield hub
    finally:
        docker("rmi", LEARNER_TAG, HUB_TAG, check=False)
        if previous is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = previous


def test_verify_passes_on_every_node(cluster_hub: ClusterHub) -> None:
    result = cluster_hub.dlworkshop("verify", "-i", str(cluster_hub.inventory), "-c", str(cluster_hub.config))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "every check passed" in result.stdout
    for node in cluster_hub.cluster.nodes:
        assert f"[ansible://{node}]" in result.stdout or node in result.stdout
    # It reports the side doors closed: private /tmp and queue, each learner's limits, the hub's log.
    for check in (
        "test_jobs_get_a_private_tmp_and_a_private_queue",
        "test_each_learner_is_held_to_the_workshops_cpus_memory_jobs_and_partition",
        "test_the_hubs_journal_is_capped_and_its_database_private",
        "test_the_hubs_plain_port_answers_no_other_local_user",
    ):
        assert re.search(rf"{check}\[ansible://{cluster_hub.cluster.login}\] PASSED", result.stdout), check


def test_a_second_deploy_changes_nothing(cluster_hub: ClusterHub) -> None:
    result = cluster_hub.dlworkshop("deploy", "-i", str(cluster_hub.inventory), "-c", str(cluster_hub.config))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = re.findall(r"│\s*(\S+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", result.stdout)
    assert {row[0] for row in rows} == set(cluster_hub.cluster.nodes), result.stdout[-2000:]
    assert all(row[2] == "0" for row in rows), f"a second deploy changed something:\n{result.stdout[-3000:]}"


def test_the_sites_slurmspawner_settings_in_jupyterhub_config_d_reach_the_learners_job(
    cluster_hub: ClusterHub,
) -> None:
    """The deploy copied hub.extra_config into the hub's jupyterhub_config.d: its req_options is on
    the learner's job. A file the site adds there setting req_partition moves the next job to that
    partition; what the site left alone (the GPU, the QOS) is still the workshop's request. The
    learners' associations reach the workshop's partition only: a site that moves their jobs gives
    them associations in its partition too, with the workshop's limits."""
    cluster = cluster_hub.cluster
    folder = f"{contract.cluster_hub_home(HUB_USER)}/{contract.HUB_EXTRA_CONFIG.name}"
    assert cluster.run(cluster.login, f"ls {folder}").stdout.split() == ["50-site.py"]
    site_file = f"{folder}/60-partition.py"
    settings = load_settings(cluster_hub.config)
    learners = ",".join(account_names(settings))
    cluster.run(cluster.login, f"scontrol create PartitionName={SITE_PARTITION} 'Nodes=node[1-2]' State=UP")
    limits = " ".join(learner_limits(settings).sacctmgr_set())
    cluster.sacctmgr(f"add user {learners} account={cluster.account} partition={SITE_PARTITION} {limits}")
    cluster.run(
        cluster.login,
        f"printf %s {shlex.quote(SITE_PARTITION_FILE)} > {site_file} && chown {HUB_USER}: {site_file}",
    )
    try:
        cluster_hub.restart_hub()
        cy = cluster_hub.start("cy")
        job = cluster_hub.jobs()[cluster_hub.account_of("cy")]
        shown = cluster.run(cluster.login, f"scontrol show job {job.id}").stdout
        assert f"Partition={SITE_PARTITION} " in shown, shown
        assert "Comment=set-by-the-site" in shown, shown
        assert f"QOS={cluster.qos}" in shown and "gpu:1" in job.gres, shown
        cy.stop("cy")
        wait_until(lambda: cluster_hub.account_of("cy") not in cluster_hub.jobs(), 60, "cy's job to end")
    finally:
        cluster.run(cluster.login, f"rm -f {site_file}")
        cluster_hub.restart_hub()
        cluster.sacctmgr(
            f"delete user where name={learners} account={cluster.account} partition={SITE_PARTITION}"
        )
        cluster.run(cluster.login, f"scontrol delete PartitionName={SITE_PARTITION}", check=False)
    assert SITE_PARTITION not in cluster.run(cluster.login, "sinfo --noheader --format=%R").stdout.split()


def granted(report: str) -> tuple[str, str]:
    """(node, device) of a DEVICES report: the device the job's cgroup lets through (ENXIO: no driver
    behind it) is the one Slurm granted; the others end in EPERM."""
    node = re.search(r"^node (\S+)", report, re.MULTILINE)
    opened = re.findall(r"^nvidia(\d) ENXIO$", report, re.MULTILINE)
    assert node and len(opened) == 1, report
    return node.group(1), opened[0]


def test_a_learner_logs_in_through_tls_and_runs_the_penguins_notebook_in_a_slurm_job(
    cluster_hub: ClusterHub, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    try:
        page.goto(f"{cluster_hub.url}/hub/login")
        page.fill("#username_input", "ada")
        page.fill("#password_input", ACCESS_CODE)
        page.fill("#secret_input", secret_of("ada"))
        page.click("#login_submit")
        page.wait_for_url("**/user/ada/lab**", timeout=300_000)
        page.goto(f"{cluster_hub.url}/user/ada/lab/tree/lessons/02-penguins.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_selector("text=saved and reloaded", timeout=400_000)
    finally:
        page.screenshot(path=str(tmp_path / "penguins.png"), full_page=True)
        context.close()
    cluster = cluster_hub.cluster
    account = cluster_hub.account_of("ada")
    job = cluster_hub.jobs()[account]
    assert job.state == "RUNNING" and job.node in cluster.compute_nodes
    assert "gpu:1" in job.gres
    uid = cluster.uid(account)
    assert account in cluster.run(job.node, f"ps -o user= -u {uid}").stdout.split()
    assert "jupyterhub-singleuser" in cluster.run(job.node, f"ps -o args= -u {uid}").stdout


def test_four_learners_get_four_distinct_gpus_and_a_fifth_waits_for_one(cluster_hub: ClusterHub) -> None:
    names = ["ada", "bo", "cy", "dee"]
    clients = {name: cluster_hub.start(name) for name in names}  # ada's server runs already
    places = {}
    for name, client in clients.items():
        report = cluster_hub.run(client, name, DEVICES)
        node, device = granted(report)
        places[name] = (node, device)
        other = {"0": "1", "1": "0"}[device]
        assert f"nvidia{other} EPERM" in report, report  # the device it was not granted
        gpus = re.search(r"gpus (\S+)", report)
        assert gpus and gpus.group(1) == device, report  # SLURM_JOB_GPUS names the granted device
    assert len(set(places.values())) == 4, places

    fifth = cluster_hub.client("eve")
    with ThreadPoolExecutor(1) as pool:
        fifth.start("eve")
        following = pool.submit(fifth.follow_progress, "eve", 300)
        wait_until(
            lambda: any(
                job.reason == "Resources" for job in cluster_hub.cluster.squeue() if job.state == "PENDING"
            ),
            60,
            "the fifth learner's job to wait for a GPU",
        )
        time.sleep(2)  # the spawn page's next message
        clients["bo"].stop("bo")
        events = following.result()
    messages = [str(event.get("message", "")) for event in events]
    assert any("waiting for a GPU (queued in Slurm)" in message for message in messages), messages
    assert events[-1].get("ready"), messages
    node, device = granted(cluster_hub.run(fifth, "eve", DEVICES))
    assert (node, device) == places["bo"]  # the GPU bo gave back
    fifth.stop("eve")
    for name in ("cy", "dee"):
        clients[name].stop(name)


def test_a_learner_cannot_take_more_than_their_gpu_from_their_server(cluster_hub: ClusterHub) -> None:
    ada = cluster_hub.client("ada")
    report = cluster_hub.run(
        ada,
        "ada",
        "import subprocess\n"
        "r = subprocess.run(['sbatch', '--gres=gpu:2', '--wrap', 'true'], capture_output=True, text=True)\n"
        "print('rc', r.returncode, r.stderr)",
    )
    assert not report.startswith("rc 0"), report
    assert "Job violates accounting/QOS policy" in report


def test_learner_a_cannot_read_learner_bs_home(cluster_hub: ClusterHub) -> None:
    other = cluster_hub.account_of("bo")
    ada = cluster_hub.client("ada")
    report = cluster_hub.run(
        ada,
        "ada",
        f"import os\ntry:\n    os.listdir('/home/{other}')\nexcept PermissionError as e:\n    print('denied', e)",
    )
    assert report.startswith("denied"), report


def spare_accounts(cluster_hub: ClusterHub) -> list[str]:
    """Two learner accounts no test logs in as before the load test: a learner typing in a
    terminal, as the account their server runs under."""
    return account_names(load_settings(cluster_hub.config))[-2:]


# A learner's own job on node1, as they would submit it from their terminal (within the quota).
SMALL = ("--nodelist=node1", "--cpus-per-task=1", "--mem=100M")


def test_a_learners_tmp_is_their_own_on_a_shared_node(cluster_hub: ClusterHub) -> None:
    cluster = cluster_hub.cluster
    reader, writer = spare_accounts(cluster_hub)
    written = cluster.submit(
        writer, "umask 022; echo secret-of-b > /tmp/b.txt; echo written; sleep 300", *SMALL
    )
    try:
        cluster.wait_for_output(writer, written, "written", timeout=120)
        read = cluster.submit(reader, "cat /tmp/b.txt 2>&1; echo TMPDIR=${TMPDIR:-unset}; echo done", *SMALL)
        output = cluster.wait_for_output(reader, read, "done", timeout=120)
    finally:
        cluster.cancel(written)
    assert "secret-of-b" not in output and "No such file" in output, output
    # The learner's server: scratch in its own /tmp, which the node's /tmp does not show.
    ada = cluster_hub.start("ada")  # running already when the whole module runs
    report = cluster_hub.run(
        ada,
        "ada",
        "import os, socket\nopen('/tmp/ada.txt', 'w').write('mine')\n"
        "print(os.environ.get('TMPDIR'), socket.gethostname())",
    )
    tmpdir, node = report.split()
    assert tmpdir == "/tmp"
    assert cluster.run(node, "test -e /tmp/ada.txt", check=False).returncode != 0
    wait_until(
        lambda: cluster.job(written).state not in ("RUNNING", "COMPLETING"), 60, "the writer's job to end"
    )


def test_a_learners_terminal_cannot_take_more_cpus_memory_or_another_partition(
    cluster_hub: ClusterHub,
) -> None:
    cluster = cluster_hub.cluster
    learner, _ = spare_accounts(cluster_hub)
    refusals = {
        " ".join(options): cluster.submit_refused(learner, "true", *options)
        for options in (
            ("--cpus-per-task=6", "--mem=2500"),
            ("--cpus-per-task=6",),
            ("--mem=2500",),
            (f"--partition={OTHER_PARTITION}", "--cpus-per-task=1", "--mem=100M"),
        )
    }
    for options, message in refusals.items():
        assert (
            "Job violates accounting/QOS policy" in message
            or "Invalid account or account/partition combination" in message
        ), f"{options}: {message}"
    # Within the quota, the same learner's job runs.
    accepted = cluster.submit(learner, "echo fits", *SMALL)
    cluster.wait_for_state(accepted, "COMPLETED", timeout=120)


def test_a_learner_sees_only_their_own_jobs_in_the_queue(cluster_hub: ClusterHub) -> None:
    cluster = cluster_hub.cluster
    watcher, other = spare_accounts(cluster_hub)
    theirs = cluster.submit(other, "sleep 300", *SMALL)
    try:
        cluster.wait_for_state(theirs, "RUNNING", timeout=120)
        seen = cluster.run(cluster.login, "squeue --noheader --format=%u", user=watcher).stdout.split()
        shown = cluster.run(cluster.login, f"scontrol show job {theirs}", user=watcher, check=False)
        accounted = cluster.run(cluster.login, "sacct --allusers --noheader --format=user%20", user=watcher)
    finally:
        cluster.cancel(theirs)
    assert other not in seen and set(seen) <= {watcher}, seen
    assert other not in shown.stdout + shown.stderr, shown.stdout
    assert other not in accounted.stdout.split(), accounted.stdout
    # The hub (the account's coordinator) still sees every learner's job.
    hub_sees = cluster.run(
        cluster.login, f"runuser -u {HUB_USER} -- squeue --noheader --format=%u"
    ).stdout.split()
    assert cluster_hub.account_of("ada") in hub_sees, hub_sees
    wait_until(lambda: cluster.job(theirs).state not in ("RUNNING", "COMPLETING"), 60, "the job to end")


def test_scancel_shows_as_a_stopped_server_and_the_learner_restarts_with_their_files(
    cluster_hub: ClusterHub,
) -> None:
    ada = cluster_hub.client("ada")
    cluster_hub.run(
        ada, "ada", "import os; open(os.path.expanduser('~/work/kept.txt'), 'w').write('still here')"
    )
    job = cluster_hub.jobs()[cluster_hub.account_of("ada")]
    cluster_hub.cluster.cancel(job.id)
    wait_until(lambda: ada.server("ada") is None, 60, "the hub to show ada's server as stopped")
    ada.spawn("ada", 300)
    assert cluster_hub.jobs()[cluster_hub.account_of("ada")].id != job.id
    assert (
        cluster_hub.run(
            ada, "ada", "import os; print(open(os.path.expanduser('~/work/kept.txt')).read())"
        ).strip()
        == "still here"
    )


def test_a_hub_restart_keeps_every_job_and_server(cluster_hub: ClusterHub) -> None:
    bo = cluster_hub.start("bo")
    before = {account: job.id for account, job in cluster_hub.jobs().items()}
    cluster_hub.restart_hub()
    for name, client in (("ada", cluster_hub.client("ada")), ("bo", bo)):
        server = client.server(name)
        assert server and server.get("ready"), f"{name}'s server after the hub's restart: {server}"
        assert client.get(f"/user/{name}/api").status_code == 200
    assert {account: job.id for account, job in cluster_hub.jobs().items()} == before


def test_a_slurmctld_restart_while_learners_work_drops_nothing(cluster_hub: ClusterHub) -> None:
    cluster = cluster_hub.cluster
    before = {account: job.id for account, job in cluster_hub.jobs().items()}
    cluster.run(cluster.login, "systemctl stop slurmctld")
    try:
        time.sleep(12)  # more than two of the hub's polls (slurm.poll_interval 5) with squeue failing
        ada = cluster_hub.client("ada")
        assert (ada.server("ada") or {}).get("ready"), "the hub dropped ada's server while slurmctld was down"
    finally:
        cluster.run(cluster.login, "systemctl start slurmctld")
        wait_until(
            lambda: cluster.run(cluster.login, "scontrol ping", check=False).returncode == 0, 60, "slurmctld"
        )
    time.sleep(6)
    assert {account: job.id for account, job in cluster_hub.jobs().items()} == before
    for name in ("ada", "bo"):
        client = cluster_hub.client(name)
        assert (client.server(name) or {}).get("ready")
        assert cluster_hub.run(client, name, "print(6 * 7)").strip() == "42"


# Every learner this module starts a server for (the load test's own are stopped by the load test).
LEARNERS = ("ada", "bo", "cy", "dee", "eve")


def stop_everyone(cluster_hub: ClusterHub) -> None:
    cluster_hub.cluster.cancel_all_and_wait()
    clients = {name: cluster_hub.client(name) for name in LEARNERS}
    wait_until(
        lambda: all(client.server(name) is None for name, client in clients.items()),
        60,
        "the hub to see every server stopped",
    )


def test_shards_let_two_learners_share_one_gpu(cluster_hub: ClusterHub) -> None:
    stop_everyone(cluster_hub)
    cluster_hub.use_settings(SHARED)
    names = ["ada", "bo", "cy", "dee", "eve"]  # five learners on four GPUs: two must share one
    clients = {name: cluster_hub.start(name) for name in names}
    places = {name: granted(cluster_hub.run(client, name, DEVICES)) for name, client in clients.items()}
    jobs = cluster_hub.jobs()
    assert all("shard:1" in jobs[cluster_hub.account_of(name)].gres for name in names), jobs
    assert all(jobs[cluster_hub.account_of(name)].state == "RUNNING" for name in names)
    assert len(set(places.values())) < len(names), places
    for name, client in clients.items():
        client.stop(name)


def test_the_smoke_test_passes_and_reports_where_the_job_ran(cluster_hub: ClusterHub, tmp_path: Path) -> None:
    stop_everyone(cluster_hub)
    cluster_hub.use_settings(NO_GPU)
    result = cluster_hub.dlworkshop(
        "smoke-test", "--hub", cluster_hub.url, "-c", str(cluster_hub.config), "--size", "smoke",
        "--episodes", "02-penguins", "--report", str(tmp_path / "smoke"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "smoke" / "report.json").read_text())
    spawn = next(check for check in report["checks"] if check["check"] == "spawn")
    assert re.search(r"Slurm job \d+ on node[12], \d+ s queued", spawn["measured"]), spawn


def test_the_load_test_runs_six_learners_over_both_nodes(cluster_hub: ClusterHub, tmp_path: Path) -> None:
    stop_everyone(cluster_hub)
    cluster_hub.use_settings(NO_GPU)  # six learners, four GPUs: the last two would wait for one
    nodes_seen: set[str] = set()
    # benchmarks/slurm_loadtest.py keeps the report (and the nodes) beside its results file.
    report = Path(os.environ.get(LOADTEST_REPORT_ENV) or tmp_path / "load")
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            cluster_hub.dlworkshop,
            "loadtest", "--hub", cluster_hub.url, "--learners", "6", "--ramp", "3",
            "-c", str(cluster_hub.config), "--report", str(report),
        )  # fmt: skip
        while not running.done():
            nodes_seen |= {job.node for job in cluster_hub.cluster.squeue() if job.state == "RUNNING"}
            time.sleep(1)
        result = running.result()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "6/6" in result.stdout, result.stdout[-2000:]
    assert set(cluster_hub.cluster.compute_nodes) <= nodes_seen, nodes_seen
    (report / "nodes.json").write_text(json.dumps(sorted(nodes_seen)))
