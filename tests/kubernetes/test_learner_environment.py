"""The learner image as a Kubernetes pod would start it: the environment of the pod KubeSpawner
renders for a profile, and the CPU quota of its limits (`docker run --cpus`, the same cgroup
quota the kubelet sets). Shows the thread pools and the GPU memory cap the learner hook applies."""

from __future__ import annotations

import json
import math
import subprocess
import uuid

import pytest

from tests.conftest import docker_cli
from tests.kubernetes.conftest import RenderedExample

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker, pytest.mark.image]

# Real TensorFlow for the thread pools; a stand-in TensorFlow with one GPU for the memory cap (the
# CPU image has no GPU), handed to the same hook the image runs when a kernel imports TensorFlow.
PROBE = """
import json, os
import tensorflow as tf
from dlworkshop_learner.tensorflow_setup import configure_tensorflow
from dlworkshop_learner.threads import THREAD_VARIABLES

applied = {}
class Config:
    class threading:
        set_intra_op_parallelism_threads = staticmethod(lambda n: applied.update(intra=n))
        set_inter_op_parallelism_threads = staticmethod(lambda n: applied.update(inter=n))
    class experimental:
        set_memory_growth = staticmethod(lambda gpu, on: applied.update(memory_growth=on))
    class LogicalDeviceConfiguration:
        def __init__(self, memory_limit):
            self.memory_limit = memory_limit
    list_physical_devices = staticmethod(lambda kind: ["/physical_device:GPU:0"])
    set_logical_device_configuration = staticmethod(
        lambda gpu, configs: applied.update(gpu_memory_limit_mb=configs[0].memory_limit))
class OneGpuTensorFlow:
    config = Config
configure_tensorflow(OneGpuTensorFlow)
print(json.dumps({
    "exports": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    "tensorflow": [tf.config.threading.get_intra_op_parallelism_threads(),
                   tf.config.threading.get_inter_op_parallelism_threads()],
    "hook": applied,
}))
"""


@pytest.mark.parametrize(
    ("example_name", "gpu_cap"),
    [("cpu.yaml", None), ("gpu-shared.yaml", 23034 // 6)],
    ids=["cpu", "gpu-shared"],
)
def test_the_learner_hook_sizes_threads_and_gpu_memory_from_the_rendered_pod(
    learner_image: str, rendered_examples: dict[str, RenderedExample], example_name: str, gpu_cap: int | None
) -> None:
    pod = rendered_examples[example_name].pods[0].pod
    (container,) = pod["spec"]["containers"]
    environment = [f"{item['name']}={item['value']}" for item in container["env"] if "value" in item]
    cpus = container["resources"]["limits"]["cpu"]
    result = subprocess.run(
        [
            docker_cli(),
            "run",
            "--rm",
            "--name",
            f"dlworkshop-k8s-test-{uuid.uuid4().hex[:8]}",
            "--network",
            "none",
            "--cpus",
            str(cpus),
            *[arg for variable in environment for arg in ("-e", variable)],
            learner_image,
            "python",
            "-c",
            PROBE,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    threads = math.ceil(float(cpus))
    assert set(report["exports"].values()) == {str(threads)}, report
    assert report["tensorflow"] == [threads, threads]
    assert report["hook"]["intra"] == report["hook"]["inter"] == threads
    if gpu_cap is None:
        assert report["hook"] == {"intra": threads, "inter": threads, "memory_growth": True}
    else:
        assert report["hook"]["gpu_memory_limit_mb"] == gpu_cap
