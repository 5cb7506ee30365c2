"""What GPUs a machine has, as NVIDIA's `nvidia-smi` reports them: asked once, parsed once.

Used where the GPUs are: `dlworkshop up` and `check` on this machine, the deploy on its target host
(the playbook runs the query and hands the output to the same parser through a filter plugin),
and the hub's Docker backend for the devices it hands out.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

NVIDIA_SMI = "nvidia-smi"
QUERY_ARGS = ("--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits")


@dataclass(frozen=True)
class GpuDevice:
    index: int
    uuid: str
    name: str = ""
    memory_mb: int | None = None


def parse_nvidia_smi(output: str) -> list[GpuDevice]:
    """Devices from `nvidia-smi` run with QUERY_ARGS; lines that are not a device are ignored
    ("No devices were found", warnings)."""
    devices = []
    for line in (output or "").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        index, uuid, name, memory = fields
        try:
            memory_mb: int | None = int(float(memory))
        except ValueError:
            memory_mb = None  # "[N/A]" on some MIG-enabled or virtual GPUs
        devices.append(GpuDevice(int(index), uuid, name, memory_mb))
    return devices


def detect_gpus() -> list[GpuDevice]:
    """This machine's GPUs; none where there is no driver or it answers with an error."""
    if shutil.which(NVIDIA_SMI) is None:
        return []
    result = subprocess.run([NVIDIA_SMI, *QUERY_ARGS], capture_output=True, text=True)
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else []
