"""The learner image's start hooks, tested as plain Python (image/learner_hooks.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("dlworkshop_learner_hooks", REPO / "image" / "learner_hooks.py")
hooks = importlib.util.module_from_spec(spec)
sys.modules["dlworkshop_learner_hooks"] = hooks
spec.loader.exec_module(hooks)


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert hooks.cpu_quota(tmp_path, environ={}) == 0.5


def test_cgroup_v2_without_limit_falls_back_to_cpu_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert hooks.cpu_quota(tmp_path, environ={"CPU_LIMIT": "2.0"}) == 2.0


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert hooks.cpu_quota(tmp_path, environ={}) == 1.5


def test_no_quota_anywhere(tmp_path: Path) -> None:
    assert hooks.cpu_quota(tmp_path, environ={}) is None


@pytest.mark.parametrize(
    ("quota", "cores", "threads"), [(0.5, 64, 1), (1.0, 64, 1), (1.5, 64, 2), (8, 4, 4), (None, 6, 6)]
)
def test_thread_count_rounds_up_within_the_cores(quota: float | None, cores: int, threads: int) -> None:
    assert hooks.thread_count(quota, cores) == threads


def test_explicit_thread_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    exports = hooks.thread_exports({"CPU_LIMIT": "1", "OMP_NUM_THREADS": "3"})
    assert exports["OMP_NUM_THREADS"] == "3"
    assert exports["TF_NUM_INTRAOP_THREADS"] in {"1", str(hooks.thread_count(hooks.cpu_quota()))}


def test_cuda_library_path_lists_the_wheel_folders(tmp_path: Path) -> None:
    for name in ("cudnn", "cublas"):
        (tmp_path / "nvidia" / name / "lib").mkdir(parents=True)
    assert hooks.cuda_library_path(tmp_path) == f"{tmp_path}/nvidia/cublas/lib:{tmp_path}/nvidia/cudnn/lib"
    assert hooks.cuda_library_path(tmp_path / "none") is None


def test_lessons_are_copied_but_edits_are_kept(tmp_path: Path) -> None:
    source, target = tmp_path / "lessons", tmp_path / "work" / "lessons"
    source.mkdir()
    (source / "a.ipynb").write_text("original a")
    (source / "b.ipynb").write_text("original b")
    target.mkdir(parents=True)
    (target / "a.ipynb").write_text("learner's a")
    assert hooks.copy_lessons(source, target) == [target / "b.ipynb"]
    assert (target / "a.ipynb").read_text() == "learner's a"


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
    monkeypatch.setenv("DLWORKSHOP_GPU_MEMORY_MB", "4096")
    tf = FakeTensorFlow(gpus=1)
    hooks.configure_tensorflow(tf)
    assert tf.calls == [("intra", 2), ("inter", 1), ("cap", ("GPU:0", 4096))]


def test_without_a_cap_gpu_memory_grows_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLWORKSHOP_GPU_MEMORY_MB", raising=False)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    tf = FakeTensorFlow(gpus=2)
    hooks.configure_tensorflow(tf)
    assert tf.calls == [("growth", "GPU:0"), ("growth", "GPU:1")]
