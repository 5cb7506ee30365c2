"""The learner image's hooks, tested as plain Python: thread pools from the CPU quota, what a server's
start does (dlworkshop_learner.start), TensorFlow configured on import, the server's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlworkshop_learner import layout, process_hooks, server_config, start, tensorflow_setup, threads
from dlworkshop_learner.data_links import PlannedLink, read_plan, save_plan
from dlworkshop_learner.healthcheck import server_answers


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert threads.cpu_quota(tmp_path, environ={}) == 0.5


def test_cgroup_v2_without_limit_falls_back_to_cpu_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cpu_quota(tmp_path, environ={"CPU_LIMIT": "2.0"}) == 2.0


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cpu_quota(tmp_path, environ={}) == 1.5


def test_no_quota_anywhere(tmp_path: Path) -> None:
    assert threads.cpu_quota(tmp_path, environ={}) is None


@pytest.mark.parametrize(
    ("quota", "cores", "count"), [(0.5, 64, 1), (1.0, 64, 1), (1.5, 64, 2), (8, 4, 4), (None, 6, 6)]
)
def test_thread_count_rounds_up_within_the_cores(quota: float | None, cores: int, count: int) -> None:
    assert threads.thread_count(quota, cores) == count


def test_explicit_thread_settings_win() -> None:
    variables = threads.thread_variables({"CPU_LIMIT": "1", "OMP_NUM_THREADS": "3"})
    assert variables["OMP_NUM_THREADS"] == "3"
    # This machine's own cgroup quota, when it has one, comes before CPU_LIMIT.
    assert variables["TF_NUM_INTRAOP_THREADS"] in {"1", str(threads.thread_count(threads.cpu_quota()))}


def test_cuda_library_path_lists_the_wheel_folders(tmp_path: Path) -> None:
    for name in ("cudnn", "cublas"):
        (tmp_path / "nvidia" / name / "lib").mkdir(parents=True)
    assert start.cuda_library_path(tmp_path) == f"{tmp_path}/nvidia/cublas/lib:{tmp_path}/nvidia/cudnn/lib"
    assert start.cuda_library_path(tmp_path / "none") is None


def test_the_cuda_wheels_go_before_an_existing_library_path(tmp_path: Path) -> None:
    (tmp_path / "nvidia" / "cudnn" / "lib").mkdir(parents=True)
    variables = start.server_environment({"LD_LIBRARY_PATH": "/usr/local/lib"}, tmp_path)
    assert variables["LD_LIBRARY_PATH"] == f"{tmp_path}/nvidia/cudnn/lib:/usr/local/lib"
    assert "LD_LIBRARY_PATH" not in start.server_environment({}, tmp_path / "no-wheels")


def test_lessons_are_copied_but_edits_are_kept(tmp_path: Path) -> None:
    source, target = tmp_path / "lessons", tmp_path / "work" / "lessons"
    source.mkdir()
    (source / "a.ipynb").write_text("original a")
    (source / "b.ipynb").write_text("original b")
    target.mkdir(parents=True)
    (target / "a.ipynb").write_text("learner's a")
    assert start.copy_lessons(source, target) == [target / "b.ipynb"]
    assert (target / "a.ipynb").read_text() == "learner's a"


@pytest.fixture
def learner_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A learner's environment as the image sets it, in tmp_path: data root, lessons, work folder."""
    data, lessons, work = tmp_path / "data", tmp_path / "lessons", tmp_path / "work"
    for folder in (data / "penguins", lessons, work):
        folder.mkdir(parents=True)
    (data / "penguins" / "penguins.csv").write_text("species\n")
    (lessons / "02-penguins.ipynb").write_text("{}")
    environ = {
        layout.DATA_ENV: str(data),
        layout.LESSONS_ENV: str(lessons),
        layout.WORK_ENV: str(work),
        "SEABORN_DATA": str(tmp_path / "seaborn"),
        "KERAS_HOME": str(tmp_path / "keras"),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return environ


def test_a_start_links_the_planned_data_and_copies_the_lessons(
    learner_home: dict[str, str], tmp_path: Path
) -> None:
    data = Path(learner_home[layout.DATA_ENV])
    planned = [
        PlannedLink(str(data / "penguins" / "penguins.csv"), "seaborn", "penguins.csv"),
        PlannedLink(str(data / "cifar10" / "cifar-10-python.tar.gz"), "keras", "datasets/cifar.tar.gz"),
    ]
    save_plan(planned, data)
    assert read_plan(data) == planned
    problems = start.prepare_work()
    assert (tmp_path / "seaborn" / "penguins.csv").resolve() == data / "penguins" / "penguins.csv"
    assert problems == [f"data file missing: {data}/cifar10/cifar-10-python.tar.gz"]
    assert (tmp_path / "work" / "lessons" / "02-penguins.ipynb").is_file()


def test_a_start_without_a_plan_says_so_and_still_copies_the_lessons(
    learner_home: dict[str, str], tmp_path: Path
) -> None:
    problems = start.prepare_work()
    assert len(problems) == 1 and problems[0].startswith("staging data failed:")
    assert layout.STAGE_PLAN_FILE in problems[0]
    assert (tmp_path / "work" / "lessons" / "02-penguins.ipynb").is_file()


def test_the_start_sets_the_thread_variables_then_runs_the_command(learner_home: dict[str, str]) -> None:
    save_plan([], Path(learner_home[layout.DATA_ENV]))
    printed = (
        "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'CPU_LIMIT')}))"
    )
    result = subprocess.run(
        [sys.executable, "-m", "dlworkshop_learner.start", sys.executable, "-c", printed],
        capture_output=True,
        text=True,
        env={**os.environ, "CPU_LIMIT": "1", "OMP_NUM_THREADS": ""},
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    expected = str(threads.thread_count(threads.cpu_quota(environ={"CPU_LIMIT": "1"})))
    assert json.loads(result.stdout) == {"OMP_NUM_THREADS": expected, "CPU_LIMIT": "1"}


def test_a_command_that_does_not_exist_is_one_line_and_exit_127(learner_home: dict[str, str]) -> None:
    save_plan([], Path(learner_home[layout.DATA_ENV]))
    result = subprocess.run(
        [sys.executable, "-m", "dlworkshop_learner.start", "no-such-command-here"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 127
    assert result.stderr.strip() == "dlworkshop: cannot run no-such-command-here: No such file or directory"


class FakeTensorFlow:
    """Records the calls the hook makes, like tf.config would receive them."""

    def __init__(self, gpus: int) -> None:
        self.calls: list[tuple[str, object]] = []
        outer = self

        class Threading:
            def set_intra_op_parallelism_threads(self, n: int) -> None:
                outer.calls.append(("intra", n))

            def set_inter_op_parallelism_threads(self, n: int) -> None:
                outer.calls.append(("inter", n))

        class Experimental:
            def set_memory_growth(self, gpu: str, on: bool) -> None:
                outer.calls.append(("growth", gpu))

        class Config:
            threading = Threading()
            experimental = Experimental()

            @staticmethod
            def list_physical_devices(kind: str) -> list[str]:
                return [f"GPU:{i}" for i in range(gpus)]

            @staticmethod
            def set_logical_device_configuration(gpu: str, configs: list[object]) -> None:
                outer.calls.append(("cap", (gpu, configs[0].memory_limit)))

            class LogicalDeviceConfiguration:
                def __init__(self, memory_limit: int) -> None:
                    self.memory_limit = memory_limit

        self.config = Config()


def test_tensorflow_gets_threads_and_the_gpu_memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    monkeypatch.setenv(layout.GPU_MEMORY_ENV, "4096")
    tf = FakeTensorFlow(gpus=1)
    tensorflow_setup.configure_tensorflow(tf)  # type: ignore[arg-type]
    assert tf.calls == [("intra", 2), ("inter", 1), ("cap", ("GPU:0", 4096))]


def test_without_a_cap_gpu_memory_grows_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(layout.GPU_MEMORY_ENV, raising=False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    tf = FakeTensorFlow(gpus=2)
    tensorflow_setup.configure_tensorflow(tf)  # type: ignore[arg-type]
    assert tf.calls == [("growth", "GPU:0"), ("growth", "GPU:1")]


def test_the_server_opens_in_the_work_folder_with_the_kernel_started_ahead() -> None:
    from traitlets.config import Config

    c = Config()
    server_config.apply(c, environ={})
    assert c.ServerApp.root_dir == layout.WORK_FOLDER
    assert c.ServerApp.kernel_manager_class == "dlworkshop_learner.kernels.PrestartedKernelManager"
    # jupyter-lsp off; JupyterLab shows the name typed at login (dlworkshop_learner/identity.py);
    # the room view reads the server's memory cgroup (dlworkshop_learner/memory.py).
    assert c.ServerApp.jpserver_extensions == {
        "jupyter_lsp": False,
        "notebook_shim": False,
        "dlworkshop_learner.identity": True,
        "dlworkshop_learner.memory": True,
    }
    # An idle server samples nothing every second (jupyter-resource-usage's Prometheus gauges).
    assert c.ResourceUseDisplay.enable_prometheus_metrics is False
    # No package-index client set up at every start (learners install no JupyterLab extensions).
    assert c.LabApp.extension_manager == "readonly"
    tensorboard = c.ServerProxy.servers["tensorboard"]["command"]
    assert tensorboard[tensorboard.index("--logdir") + 1] == layout.WORK_FOLDER
    # On a Slurm cluster the job names the learner's own work folder.
    on_slurm = Config()
    server_config.apply(on_slurm, environ={layout.WORK_ENV: "/home/dlw-01/work"})
    assert on_slurm.ServerApp.root_dir == "/home/dlw-01/work"


def test_the_healthcheck_is_unhealthy_without_a_server(tmp_path: Path) -> None:
    (tmp_path / "jpserver-1.json").write_text(json.dumps({"port": 9, "base_url": "/"}))
    assert server_answers(tmp_path) is False
    assert server_answers(tmp_path / "none") is False


BIN = "/opt/venv/bin"


@pytest.mark.parametrize(
    ("argv", "learners"),
    [
        (["/opt/venv/bin/python", "-m", "ipykernel_launcher", "-f", "/tmp/k.json"], True),
        (["python", "-c", "import seaborn"], True),
        (["python", "train.py"], True),
        (["python", "-X", "importtime", "-W", "error", "train.py"], True),
        (["python"], True),
        (["/opt/venv/bin/python3", "/opt/venv/bin/ipython"], True),
        (["python", "-m", "dlworkshop_learner.healthcheck"], False),
        (["python", "-m", "dlworkshop_learner.start", "jupyterhub-singleuser"], False),
        (["/opt/venv/bin/python3", "/opt/venv/bin/jupyterhub-singleuser"], False),
        (["/opt/venv/bin/python3", "/opt/venv/bin/dlworkshop", "data", "verify"], False),
        (["/opt/venv/bin/python3", "/opt/venv/bin/tensorboard", "--logdir", "."], False),
        (["python", "-m", "pip", "list"], False),
    ],
)
def test_only_learners_code_pays_for_the_hooks(argv: list[str], learners: bool) -> None:
    """Kernels and a learner's scripts get the hooks; health checks and installed programs do not."""
    assert process_hooks.runs_learner_code(argv, BIN) is learners


def test_learners_processes_get_tensorflows_log_level_unless_the_deployer_set_one() -> None:
    environ: dict[str, str] = {}
    tensorflow_setup.quiet_environment(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    chosen = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    tensorflow_setup.quiet_environment(chosen)
    assert chosen == {"TF_CPP_MIN_LOG_LEVEL": "0"}


HELD = """
import os
from dlworkshop_learner.tensorflow_setup import NO_GPU_NOISE, native_stderr_held
with native_stderr_held(NO_GPU_NOISE):
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"E0000 00:00:1 1 cuda_executor.cc:1228] failed call to cuInit: INTERNAL: CUDA error\\n")
    os.write(2, b"W0000 something a learner should see\\n")
os.write(2, b"after\\n")
"""


def test_the_gpu_lookups_no_gpu_lines_are_dropped_and_every_other_line_kept() -> None:
    """What C++ code writes to file descriptor 2 while the lookup runs (a process of its own: the
    hook swaps the descriptor itself)."""
    result = subprocess.run([sys.executable, "-c", HELD], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr == "W0000 something a learner should see\nafter\n"


class FakeCudaTensorFlow(FakeTensorFlow):
    def __init__(self, gpus: int, cuda: bool) -> None:
        super().__init__(gpus)

        class Sysconfig:
            @staticmethod
            def get_build_info() -> dict[str, object]:
                return {"is_cuda_build": cuda}

        self.sysconfig = Sysconfig()


@pytest.mark.parametrize(("gpus", "cuda", "said"), [(0, True, True), (1, True, False), (0, False, False)])
def test_a_cuda_build_that_finds_no_gpu_says_so_in_one_sentence(
    gpus: int, cuda: bool, said: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(layout.GPU_MEMORY_ENV, raising=False)
    tensorflow_setup.configure_tensorflow(FakeCudaTensorFlow(gpus, cuda))  # type: ignore[arg-type]
    assert capsys.readouterr().err == (tensorflow_setup.NO_GPU_SENTENCE + "\n" if said else "")


def test_the_server_log_says_when_the_cuda_image_finds_no_gpu(tmp_path: Path) -> None:
    site, dev = tmp_path / "site", tmp_path / "dev"
    (site / "nvidia" / "cudnn" / "lib").mkdir(parents=True)
    dev.mkdir()
    (dev / "nvidiactl").touch()  # the driver's control device alone is no GPU
    notice = start.no_gpu_notice(site, dev)
    assert notice is not None and notice.startswith("dlworkshop: no NVIDIA GPU found")
    (dev / "nvidia0").touch()
    assert start.no_gpu_notice(site, dev) is None
    assert start.no_gpu_notice(tmp_path / "cpu-image-site", tmp_path / "empty") is None
