"""The learner image, run the ways a workshop runs it: offline, under a CPU quota, as a JupyterHub
single-user server, with a learner's own volume. Checks that hold for both variants run on the CPU
and the CUDA image (`each_learner_image`); the rest on the CPU image."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dlworkshop.contract import learner
from dlworkshop.lessons import Lesson
from tests.conftest import docker_cli
from tests.fixtures.data import KERAS_OVERRIDE_DIR, keras_hash_overrides
from tests.fixtures.images import LearnerImage, copy_build_context

pytestmark = [pytest.mark.docker, pytest.mark.image]
OVERRIDE_MOUNT = "/opt/dlworkshop-test-override"


def docker_run(
    image: str, *args: str, command: list[str], timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_cli(), "run", "--rm", *args, image, *command], capture_output=True, text=True, timeout=timeout
    )


def offline_args(fixture_mirror: Path) -> list[str]:
    """No network, plus the test-only override that lets Keras accept the generated fixtures."""
    return [
        "--network",
        "none",
        "-v",
        f"{KERAS_OVERRIDE_DIR}:{OVERRIDE_MOUNT}:ro",
        "-e",
        f"PYTHONPATH={OVERRIDE_MOUNT}",
        "-e",
        f"DLWORKSHOP_TEST_KERAS_HASHES={json.dumps(keras_hash_overrides(fixture_mirror))}",
    ]


UPSTREAM_DATA_CALLS = """
import pandas as pd, seaborn as sns, keras
assert sns.load_dataset("penguins").shape == (344, 7)
(x_train, _), _ = keras.datasets.cifar10.load_data()
assert x_train.shape == (50000, 32, 32, 3)
keras.applications.DenseNet121(weights="imagenet", include_top=False, input_shape=(64, 64, 3))
weather = pd.read_csv("{weather_url}")
assert "BASEL_sunshine" in weather.columns
import numpy as np
from dlworkshop.data import locate
assert np.load(locate("dollar-street-10", "train_images.npy")).dtype == np.int32
print("UPSTREAM CALLS OK")
"""


def test_the_upstream_lessons_data_calls_succeed_with_no_network(
    each_learner_image: LearnerImage, fixture_mirror: Path
) -> None:
    from dlworkshop.data.registry import load_registry

    weather_url = load_registry().datasets["weather-light"].files[0].urls[0]
    script = UPSTREAM_DATA_CALLS.replace("{weather_url}", weather_url)
    result = docker_run(
        each_learner_image.tag, *offline_args(fixture_mirror), command=["python", "-c", script]
    )
    assert "UPSTREAM CALLS OK" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]


def test_the_data_in_the_image_verifies_offline(each_learner_image: LearnerImage) -> None:
    result = docker_run(each_learner_image.tag, "--network", "none", command=["dlworkshop", "data", "verify"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"10 files verified in {learner.DATA_ROOT}" in result.stdout


@pytest.mark.parametrize(("cpus", "threads"), [("0.5", 1), ("2", 2)])
def test_tensorflow_thread_pools_follow_the_cpu_quota(
    each_learner_image: LearnerImage, cpus: str, threads: int
) -> None:
    script = (
        "import os, tensorflow as tf\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads(), os.environ['OMP_NUM_THREADS'])\n"
    )
    result = docker_run(
        each_learner_image.tag, "--network", "none", "--cpus", cpus, command=["python", "-c", script]
    )
    assert result.stdout.split()[-3:] == [str(threads)] * 3, result.stdout + result.stderr[-2000:]


def test_runs_as_the_learner_with_lessons_copied_without_overwriting_edits(
    learner_image: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "lessons").mkdir(parents=True)
    (work / "lessons" / "02-penguins.ipynb").write_text("my own edits")
    subprocess.run(["chown", "-R", "1000:1000", str(work)], check=True)
    result = docker_run(
        learner_image,
        "--network",
        "none",
        "-v",
        f"{work}:{learner.WORK_FOLDER}",
        command=["bash", "-c", f"id -u; id -g -n; echo $HOME; ls {learner.WORK_FOLDER}/lessons"],
    )
    lines = result.stdout.split()
    assert lines[:3] == [str(learner.UID), learner.USER, learner.HOME], result.stdout + result.stderr
    assert "01-introduction.ipynb" in lines and "06-outlook.ipynb" in lines
    assert (work / "lessons" / "02-penguins.ipynb").read_text() == "my own edits"


def test_labels_environment_and_user_are_the_contracts(each_learner_image: LearnerImage) -> None:
    """What `docker image inspect` shows on the built image, against dlworkshop.contract."""
    from dlworkshop.contract import LABEL_LOCK_SHA256, LABEL_REVISION, LABEL_VARIANT
    from dlworkshop.image.build import git_revision, lock_sha256

    inspected = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{json .Config}}", each_learner_image.tag],
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(inspected.stdout)
    labels = config["Labels"]
    assert labels[LABEL_VARIANT] == each_learner_image.variant
    assert labels[LABEL_LOCK_SHA256] == lock_sha256(each_learner_image.variant)
    assert labels[LABEL_REVISION] == git_revision()
    env = dict(variable.split("=", 1) for variable in config["Env"])
    assert {name: env.get(name) for name in (learner.DATA_ENV, learner.WORK_ENV, learner.LESSONS_ENV)} == {
        learner.DATA_ENV: learner.DATA_ROOT,
        learner.WORK_ENV: learner.WORK_FOLDER,
        learner.LESSONS_ENV: learner.LESSONS_DIR,
    }
    assert env[learner.REGISTRY_ENV] == f"{learner.DATA_ROOT}/{learner.REGISTRY_FILE}"
    assert env["PATH"].startswith(f"{learner.VENV}/bin:")
    assert config["User"] == str(learner.UID)
    assert config["WorkingDir"] == learner.WORK_FOLDER
    assert list(config["ExposedPorts"]) == [f"{learner.SERVER_PORT}/tcp"]


# What a learner server's start must not pay for (benchmarks/start_profile.py measured each).
START_PROBE = """
import sys
import jupyter_server.serverapp, jupyterhub.singleuser
from jupyter_server.serverapp import ServerApp
app = ServerApp()
app.load_config_file()
slow = sorted(m for m in ("rfc3987_syntax", "lark") if m in sys.modules)
print("SLOW", slow, "OFF", [app.jpserver_extensions.get(e) for e in ("jupyter_lsp", "notebook_shim")])
print("EXTENSION MANAGER", app.config.LabApp.extension_manager)
"""


def test_a_server_start_skips_what_a_workshop_does_not_need(learner_image: str) -> None:
    """No Lark grammar compiled at import (jsonschema's optional IRI check), no language-server scan,
    no classic-notebook settings shim, no package-index client for JupyterLab's extension manager."""
    result = docker_run(learner_image, "--network", "none", command=["python", "-c", START_PROBE])
    assert result.returncode == 0, result.stderr
    assert "SLOW [] OFF [False, False]" in result.stdout, result.stdout + result.stderr
    assert "EXTENSION MANAGER readonly" in result.stdout, result.stdout + result.stderr


# Stands in for the hub's API, which jupyterhub-singleuser asks for its version when it starts.
FAKE_HUB_API = """
import http.server
class Hub(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", __import__("jupyterhub").__version__)
        self.end_headers()
        self.wfile.write(b"{}")
    do_POST = do_GET
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", 8081), Hub).serve_forever()
"""


def test_jupyterhub_singleuser_starts_and_turns_healthy(learner_image: str) -> None:
    name = f"dlworkshop-test-singleuser-{int(time.time())}"
    hub_env = {
        "JUPYTERHUB_API_TOKEN": "test-token",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-learner",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/learner/",
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/learner/",
        "JUPYTERHUB_USER": "learner",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/learner/oauth_callback",
    }
    hub_env["FAKE_HUB"] = FAKE_HUB_API
    env_args = [arg for key, value in hub_env.items() for arg in ("-e", f"{key}={value}")]
    subprocess.run(
        [
            docker_cli(),
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            *env_args,
            learner_image,
            "bash",
            "-c",
            'python -c "$FAKE_HUB" & exec jupyterhub-singleuser',
        ],
        check=True,
        capture_output=True,
    )
    try:
        status = ""
        for _ in range(60):
            status = subprocess.run(
                [docker_cli(), "inspect", "--format", "{{.State.Health.Status}}", name],
                capture_output=True,
                text=True,
            ).stdout.strip()
            if status in ("healthy", "unhealthy"):
                break
            time.sleep(2)
        logs = subprocess.run([docker_cli(), "logs", name], capture_output=True, text=True)
        assert status == "healthy", logs.stdout[-2000:] + logs.stderr[-3000:]
    finally:
        subprocess.run([docker_cli(), "rm", "-f", name], capture_output=True)


def halves_by_cpu(lessons: list[Lesson]) -> list[list[str]]:
    """The lessons' names in two groups of about equal CPU at smoke size (their measured needs), the
    heaviest placed first: one group a core."""
    groups: list[list[str]] = [[], []]
    loads = [0.0, 0.0]
    for lesson in sorted(lessons, key=lambda item: -smoke_cpu_seconds(item)):
        lighter = loads.index(min(loads))
        groups[lighter].append(lesson.name)
        loads[lighter] += smoke_cpu_seconds(lesson)
    return [group for group in groups if group]


def smoke_cpu_seconds(lesson: Lesson) -> float:
    """The lesson's measured CPU at smoke size (its notebook's needs metadata; tests/package/test_needs.py keeps it equal to the results file)."""
    return float(lesson.needs["cpu"]["smoke"]["cpu_seconds"])


@pytest.mark.notebooks
def test_every_lesson_runs_at_smoke_size_inside_the_image_offline(
    each_learner_image: LearnerImage, fixture_mirror: Path
) -> None:
    """Every lesson notebook runs top to bottom at smoke size where learners run it (the image,
    offline, one CPU; the CUDA image included: its TensorFlow falls back to the CPU), on the data
    the image holds, trains a model whose loss went down, and saves it. Two containers of one CPU
    each run half the lessons at once (the machine's two cores)."""
    from concurrent.futures import ThreadPoolExecutor

    from dlworkshop.lessons import list_lessons

    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from dlworkshop.lessons import list_lessons, run_lesson\n"
        "for lesson in list_lessons():\n"
        "    if lesson.name not in sys.argv[1:]:\n"
        "        continue\n"
        "    out = Path('/tmp/out') / lesson.name\n"
        "    run = run_lesson(lesson, 'smoke', out, timeout=600)\n"
        "    saved = sorted(path.name for path in out.glob('*.keras'))\n"
        "    print('LESSON', json.dumps({'name': lesson.name, 'seconds': round(run.seconds, 1),\n"
        "          'losses': run.losses, 'loss_went_down': run.loss_went_down, 'saved': saved}), flush=True)\n"
    )
    groups = halves_by_cpu(list_lessons())
    with ThreadPoolExecutor(len(groups)) as pool:
        results = list(
            pool.map(
                lambda names: docker_run(
                    each_learner_image.tag,
                    *offline_args(fixture_mirror),
                    "--cpus",
                    "1",
                    command=["python", "-c", script, *names],
                    timeout=1500,
                ),
                groups,
            )
        )
    runs = {
        run["name"]: run
        for result in results
        for run in (
            json.loads(line[len("LESSON ") :])
            for line in result.stdout.splitlines()
            if line.startswith("LESSON ")
        )
    }
    tail = "\n".join(result.stdout[-3000:] + result.stderr[-3000:] for result in results)
    assert sorted(runs) == sorted(lesson.name for lesson in list_lessons()), tail
    assert [name for name, run in runs.items() if not run["losses"]] == [], (
        f"no training cell printed its loss: {tail}"
    )
    assert {name: run["losses"] for name, run in runs.items() if not run["loss_went_down"]} == {}
    assert [name for name, run in runs.items() if not run["saved"]] == [], "no .keras model saved"


def test_a_dataset_that_does_not_match_its_hash_fails_the_build(
    base_image: str, learner_image: str, fixture_mirror: Path, fixture_registry: Path, tmp_path: Path
) -> None:
    """The build fetches into a fresh context (this checkout's data is already verified, and a
    verified copy is never fetched again)."""
    import shutil

    from dlworkshop.errors import WorkshopError
    from dlworkshop.image.build import build_learner_image

    mirror = tmp_path / "mirror"
    shutil.copytree(fixture_mirror, mirror)
    (mirror / "weather" / "metadata.txt").write_text("not the real metadata\n")
    with pytest.raises(WorkshopError, match=r"weather/metadata\.txt .* does not match its recorded sha256"):
        build_learner_image(
            f"{learner_image}-corrupt",
            base_image=base_image,
            data_mirror=str(mirror),
            registry=fixture_registry,
            context=copy_build_context(tmp_path / "context"),
        )
    assert (
        subprocess.run(
            [docker_cli(), "image", "inspect", f"{learner_image}-corrupt"], capture_output=True
        ).returncode
        != 0
    )


def kernel_ahead_server(client: Any, image: str, *options: str) -> Any:
    return client.containers.run(
        image,
        [
            "jupyter",
            "server",
            "--ServerApp.ip=0.0.0.0",
            "--ServerApp.token=ahead",
            "--ServerApp.port=8888",
            *options,
        ],
        detach=True,
        ports={"8888/tcp": ("127.0.0.1", None)},
        name=f"dlworkshop-test-kernel-ahead-{time.time_ns()}",
    )


def server_of(container: Any) -> Any:
    from dlworkshop.clients.smoke.jupyter import JupyterServer

    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"]
    return JupyterServer(f"http://127.0.0.1:{port}/", "ahead")


def test_no_kernel_is_started_ahead_beside_the_one_the_learner_took(learner_image: str) -> None:
    """A learner who opens a notebook before the kernel ahead starts keeps the only kernel: the
    kernel manager looks again (every second here) and finds theirs running."""
    import docker

    from dlworkshop.clients.smoke.jupyter import run_code

    container = kernel_ahead_server(
        docker.from_env(),
        learner_image,
        "--PrestartedKernelManager.prestart_delay=3",
        "--PrestartedKernelManager.refill_after=1",
        "--PrestartedKernelManager.recheck=1",
        "--PrestartedKernelManager.host_busy_share=100",
    )
    try:
        server = server_of(container)
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, container.logs().decode()[-3000:]
            try:
                kernel = server.request("POST", "api/kernels", json={"name": "python3"}).json()["id"]
                break
            except Exception:
                time.sleep(0.1)
        assert run_code(server, kernel, "print(6 * 7)").strip() == "42"
        time.sleep(8)  # past the delay, the refill and several looks
        assert len(container.exec_run(["pgrep", "-f", "ipykernel_launcher"]).output.decode().split()) == 1
        assert "ready ahead" not in container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_first_kernel_is_started_ahead_and_moves_to_the_notebooks_folder(learner_image: str) -> None:
    """A learner's first kernel request gets the kernel the server started ahead (same process),
    hidden from the kernel list until then, working in the folder asked for."""
    import docker

    from dlworkshop.clients.smoke.jupyter import run_code

    client = docker.from_env()
    # Whatever else runs on this host: the gate's reading of a busy host is unit-tested
    # (tests/hub/test_kernel_ahead.py); this test is of the hand-out.
    container = kernel_ahead_server(client, learner_image, "--PrestartedKernelManager.host_busy_share=100")
    try:
        server = server_of(container)
        deadline = time.monotonic() + 120
        while True:  # the kernel ahead starts a few seconds after the server answers
            assert time.monotonic() < deadline, container.logs().decode()[-3000:]
            try:
                if server.request("GET", "api/kernels").json() == [] and (
                    "kernel is ready ahead" in container.logs().decode()
                ):
                    break
            except Exception:
                pass
            time.sleep(0.2)
        server.request("PUT", "api/contents/episode", json={"type": "directory"})
        kernel = server.request("POST", "api/kernels", json={"name": "python3", "path": "episode"}).json()[
            "id"
        ]
        output = run_code(server, kernel, "import os\nprint(os.getpid(), os.getcwd())")
        pid, cwd = output.split()
        assert cwd == f"{learner.WORK_FOLDER}/episode"
        assert [k["id"] for k in server.request("GET", "api/kernels").json()] == [kernel]
        # One kernel process, the one started ahead (PIDs of the container's namespace).
        assert container.exec_run(["pgrep", "-f", "ipykernel_launcher"]).output.decode().split() == [pid]
        assert "Kernel handed out (started ahead)" in container.logs().decode()
    finally:
        container.remove(force=True)
