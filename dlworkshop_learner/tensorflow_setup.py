"""TensorFlow configured when (and only if) a kernel imports it: thread pools from the environment
the start hook set, and the per-learner GPU memory cap (or memory growth when there is none); and
TensorFlow kept quiet for a learner.

A memory cap is per process and cooperative; only MIG isolates hard.

Quiet: a learner's first `import tensorflow` would otherwise print TensorFlow's C++ log lines in red
under the cell (ipykernel forwards the process's stderr): INFO lines about CPU instructions and
oneDNN, absl's "All log messages before absl::InitializeLog()", and, in the CUDA image on a machine
or container without a GPU, "failed call to cuInit". None of them is for a learner: the INFO lines
go by TensorFlow's own log level (set for learners' processes by process_hooks), and the lines of
the GPU lookup are held back while it runs, the ones that only say "no GPU" dropped; where a CUDA
build finds no GPU, one plain sentence says so instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

from dlworkshop_learner import layout

# TensorFlow's C++ log level for learners' processes: 1 drops INFO; warnings and errors still show.
LOG_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "1"}
# What the GPU lookup writes when there is no GPU: absl's note before its first line, CUDA's
# "no device" (cuInit), and the CUDA diagnostics that follow it.
NO_GPU_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|failed call to cuInit"
    r"|cuda_diagnostics|CUDA diagnostic information|kernel driver does not appear to be running"
    r"|\] (hostname|libcuda reported version|kernel reported version|DSO loaded|"
    r"retrieving CUDA diagnostic)"
)
NO_GPU_SENTENCE = (
    "No GPU is available to this notebook, so TensorFlow uses the CPU (training takes longer); "
    "tell a helper if this workshop should give you one."
)


def quiet_environment(environ: dict[str, str] | os._Environ[str]) -> None:
    """TensorFlow's log level for a learner's process, unless the deployer set one."""
    for name, value in LOG_ENVIRONMENT.items():
        environ.setdefault(name, value)


@contextlib.contextmanager
def native_stderr_held(drop: re.Pattern[str]) -> Iterator[None]:
    """Hold back what the process writes to file descriptor 2 (C++ libraries write there, not to
    sys.stderr) while the block runs; then write it out, less the lines `drop` matches."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                held.seek(0)
                lines = held.read().decode(errors="replace").splitlines(keepends=True)
                kept = "".join(line for line in lines if not drop.search(line))
                if kept:
                    os.write(2, kept.encode())
    finally:
        os.close(saved)


def built_with_cuda(tf: ModuleType) -> bool:
    try:
        return bool(tf.sysconfig.get_build_info().get("is_cuda_build"))
    except Exception:
        return False


def configure_tensorflow(tf: ModuleType) -> None:
    """Thread pools and GPU memory, before the first op; a failure warns, never breaks the import."""
    try:
        intra = os.environ.get("TF_NUM_INTRAOP_THREADS")
        inter = os.environ.get("TF_NUM_INTEROP_THREADS")
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra))
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter))
        cap = os.environ.get(layout.GPU_MEMORY_ENV)
        with native_stderr_held(NO_GPU_NOISE):
            gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            if cap:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(cap))]
                )
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
        if not gpus and built_with_cuda(tf):
            print(NO_GPU_SENTENCE, file=sys.stderr, flush=True)
    except Exception as exc:
        warnings.warn(f"dlworkshop could not configure TensorFlow: {exc}", stacklevel=1)
