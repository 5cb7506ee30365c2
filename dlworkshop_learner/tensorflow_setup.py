"""TensorFlow configured when (and only if) a kernel imports it: thread pools from the environment
the start hook set, and the per-learner GPU memory cap (or memory growth when there is none).

A memory cap is per process and cooperative; only MIG isolates hard.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

from dlworkshop_learner import layout


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
        for gpu in tf.config.list_physical_devices("GPU"):
            if cap:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(cap))]
                )
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    except Exception as exc:
        warnings.warn(f"dlworkshop could not configure TensorFlow: {exc}", stacklevel=1)
