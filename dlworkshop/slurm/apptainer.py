"""slurm.environment apptainer: the learner image, converted to a SIF on shared storage, runs each
learner's server with `apptainer exec --nv` inside their job. Apptainer binds the home folder and
passes the job's environment (CUDA_VISIBLE_DEVICES included) by default; the SIF keeps the image's
own environment (its venv on PATH, its data and lessons paths).

Not run in this project's tests: Apptainer is not packaged in Debian. Convert the image with
`apptainer build learner.sif docker-daemon://dlworkshop/learner:TAG` on a machine with Docker.
"""

from __future__ import annotations

from collections.abc import Sequence

# The learner image's start hook, run inside the SIF before the server (the image's entry point
# without tini: srun is the job step's init).
IMAGE_START = ["python", "-m", "dlworkshop_learner.start"]


def apptainer_command(
    sif: str, home: str, work: str, inner: Sequence[str], gpu: bool, binds: Sequence[str] = ()
) -> list[str]:
    """The command a learner's job runs: `inner` (the start hook, then the server) inside the SIF,
    with the learner's home (not the image's /home/jovyan) and `binds` (read-only) from the host."""
    command = ["apptainer", "exec"]
    if gpu:
        command.append("--nv")  # the host's driver libraries; the devices are the job's cgroup's
    command += ["--no-home", "--bind", f"{home}:{home}"]
    for folder in binds:
        command += ["--bind", f"{folder}:{folder}:ro"]
    command += ["--pwd", work, "--env", f"HOME={home}", sif, *inner]
    return command
