"""What each learner image, CPU and CUDA, must be, run here on the CPU: TensorFlow built for its
variant, the lock installed exactly, the learner hooks lazy, and a learner's first `import
tensorflow` quiet. The CUDA image runs here as on a GPU host whose learner gets no GPU: it falls
back to the CPU, the server's log says so in one line and the notebook in one sentence."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from dlworkshop.image.build import lock_file
from dlworkshop_learner.tensorflow_setup import NO_GPU_SENTENCE
from tests.conftest import docker_cli
from tests.fixtures.images import LearnerImage

pytestmark = [pytest.mark.docker, pytest.mark.image]
KERNEL_SCRIPT = Path(__file__).with_name("first_import_in_kernel.py")
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)", re.MULTILINE)
# The server log's line where a CUDA image finds no GPU (dlworkshop_learner.start).
NO_GPU_LOG_LINE = re.compile(r"^dlworkshop: no NVIDIA GPU found", re.MULTILINE)


def run_in(
    image: str, *args: str, command: list[str], timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_cli(), "run", "--rm", "--network", "none", *args, image, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(variant: str) -> dict[str, str]:
    return {canonical(m["name"]): m["version"] for m in PINNED.finditer(lock_file(variant).read_text())}  # type: ignore[arg-type]


def test_every_package_the_lock_pins_is_installed_at_its_version(each_learner_image: LearnerImage) -> None:
    """The NVIDIA wheels of the CUDA lock included: each at the version the lock pins."""
    result = run_in(each_learner_image.tag, command=["pip", "list", "--format", "json"])
    assert result.returncode == 0, result.stderr[-2000:]
    installed = {canonical(p["name"]): p["version"] for p in json.loads(result.stdout)}
    locked = locked_versions(each_learner_image.variant)
    assert {name: installed.get(name) for name in locked} == locked
    nvidia = sorted(name for name in locked if name.startswith("nvidia-"))
    if each_learner_image.variant == "cuda":
        assert len(nvidia) >= 10 and all(name.endswith("-cu12") for name in nvidia), nvidia
    else:
        assert nvidia == [] and not any(name.startswith("nvidia-") for name in installed)


BUILD_INFO = "import json, tensorflow as tf; print(json.dumps(dict(tf.sysconfig.get_build_info())))"


def test_tensorflow_is_built_for_the_images_variant(each_learner_image: LearnerImage) -> None:
    """The CUDA image's TensorFlow is a CUDA build whose CUDA and cuDNN are the majors of the
    NVIDIA wheels its lock pins (what it loads at run time); the CPU image's is not."""
    result = run_in(each_learner_image.tag, command=["python", "-c", BUILD_INFO])
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    if each_learner_image.variant == "cpu":
        assert info["is_cuda_build"] is False
        return
    locked = locked_versions("cuda")
    assert info["is_cuda_build"] is True
    assert info["cuda_version"].split(".")[0] == locked["nvidia-cuda-runtime-cu12"].split(".")[0]
    assert str(info["cudnn_version"]).split(".")[0] == locked["nvidia-cudnn-cu12"].split(".")[0]


LAZY_PROBE = """
import sys
from dlworkshop_learner import import_hooks
waiting = "tensorflow" in import_hooks._callbacks and "tensorflow" not in sys.modules
import tensorflow as tf
print("LAZY", waiting, "tensorflow" not in import_hooks._callbacks,
      tf.config.threading.get_intra_op_parallelism_threads(), len(tf.config.list_logical_devices("GPU")))
"""


def test_tensorflow_is_configured_when_a_learner_imports_it_not_before(
    each_learner_image: LearnerImage,
) -> None:
    """The hook that applies the thread pools and the GPU memory cap waits for the learner's own
    `import tensorflow` (a kernel that never imports it never loads it), then runs once."""
    result = run_in(
        each_learner_image.tag,
        "--cpus",
        "1",
        "-e",
        "DLWORKSHOP_GPU_MEMORY_MB=1024",
        command=["python", "-c", LAZY_PROBE],
    )
    assert "LAZY True True 1 0" in result.stdout, result.stdout + result.stderr[-2000:]


def first_import(image: str) -> dict:  # type: ignore[type-arg]
    result = run_in(
        image,
        "-v",
        f"{KERNEL_SCRIPT}:/tmp/first_import_in_kernel.py:ro",
        command=["python", "/tmp/first_import_in_kernel.py"],
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"server_log": result.stderr}  # type: ignore[no-any-return]


def test_a_learners_first_import_of_tensorflow_shows_nothing_but_what_matters(
    each_learner_image: LearnerImage,
) -> None:
    """A real kernel's first `import tensorflow` cell: its printed result, and no C++ log line
    (CPU instructions, oneDNN, absl's note, cuInit); the CUDA image without a GPU adds the one
    sentence that says TensorFlow uses the CPU."""
    ran = first_import(each_learner_image.tag)
    assert ran["status"] == "ok", ran
    stdout = "".join(s["text"] for s in ran["streams"] if s["name"] == "stdout")
    stderr = "".join(s["text"] for s in ran["streams"] if s["name"] != "stdout")
    assert stdout == "4.0\n"
    expected = NO_GPU_SENTENCE + "\n" if each_learner_image.variant == "cuda" else ""
    assert stderr == expected, stderr


def test_the_server_log_says_once_that_no_gpu_was_found(each_learner_image: LearnerImage) -> None:
    """What the container's start prints (the server's log, where an admin looks): one line in the
    CUDA image without a GPU, none in the CPU image."""
    result = run_in(each_learner_image.tag, command=["true"])
    assert result.returncode == 0, result.stderr
    found = NO_GPU_LOG_LINE.findall(result.stderr)
    assert len(found) == (1 if each_learner_image.variant == "cuda" else 0), result.stderr
    assert result.stderr.count("\n") == len(found), result.stderr
