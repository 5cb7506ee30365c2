"""What of workshop.yaml a Slurm cluster cannot take. Refused when the settings load (hub.backend:
slurm), each at the key it names, as dlworkshop/kubernetes/supported.py does for Z2JH (dlworkshop/settings/support.py): `check`,
`deploy` and the hub on the login node all stop on the same message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkshop.settings.support import DockerOnly, Problem, docker_only_problems, explicitly_set, register

if TYPE_CHECKING:
    from dlworkshop.settings import Settings

# Keys only the Docker backend reads, and what stands for them on a Slurm cluster.
DOCKER_ONLY = DockerOnly(
    backend="slurm",
    keys={
        ("hub", "image_archive"): "the hub runs from a venv on the login node, not from an image",
        ("hub", "network"): "learners' jobs run on the cluster's own network",
        ("hub", "data_volume"): "the hub keeps its state in a folder on the login node",
        ("hub", "container_name"): "the hub is a systemd service on the login node",
        ("image", "archive"): "the learner environment is copied out of an image on this machine",
        ("resources", "pids"): "Slurm has no per-job process limit; the site's limits apply",
        ("resources", "disk_free_min"): "learners' files live in their homes on the cluster's storage",
        ("resources", "gpu", "devices"): "Slurm picks the GPUs (GRES)",
        ("resources", "gpu", "mig_devices"): "Slurm picks the MIG slices (slurm.mig_profile)",
        ("resources", "gpu", "docker_device_requests"): "Slurm hands GPUs to jobs (GRES and cgroups)",
        ("prewarm", "spares"): "every seat is a cluster account made at deploy time; raise prewarm.seats",
    },
    disk="learners' files live in their homes on the cluster's storage, under the site's quotas",
    tmp="a job's /tmp is its own on the node's local disk (job_container/tmpfs in slurm.conf)",
    extra_mounts="jobs see the cluster's shared file systems as they are; point learners at the folder "
    "instead (resources.extra_env can name it)",
    shared_folder="is a folder on its shared storage",
    image_archive="the learner environment is copied out of the image with Docker on the machine that "
    "deploys: use build (or pull)",
)

# slurm.* keys that only one GPU policy or one environment reads.
ONLY_FOR: dict[str, tuple[str, tuple[str, ...]]] = {
    "gpu_type": ("policy", ("whole",)),
    "shards_per_gpu": ("policy", ("shared",)),
    "mig_profile": ("policy", ("mig",)),
    "apptainer_image": ("environment", ("apptainer",)),
}


def unsupported_settings(settings: Settings) -> list[Problem]:
    slurm, gpu = settings.slurm, settings.resources.gpu
    problems = docker_only_problems(settings, DOCKER_ONLY)
    for name, (what, allowed) in ONLY_FOR.items():
        current = gpu.policy if what == "policy" else slurm.environment
        if current not in allowed and explicitly_set(settings, ("slurm", name)):
            problems.append(
                (("slurm", name), f"only {what} {' or '.join(allowed)} reads it (the {what} is {current})")
            )
    if gpu.policy == "mig" and slurm.mig_profile is None:
        problems.append(
            (
                ("slurm", "mig_profile"),
                "policy mig on Slurm needs the MIG GRES type of one slice, as gres.conf names it (e.g. 1g.10gb)",
            )
        )
    if gpu.policy == "shared":
        shards = slurm.shards_per_gpu or gpu.learners_per_gpu
        if shards % gpu.learners_per_gpu:
            problems.append(
                (
                    ("slurm", "shards_per_gpu"),
                    f"{shards} shards per GPU cannot be split into {gpu.learners_per_gpu} equal shares "
                    f"(per_learner {gpu.per_learner:g}); use a multiple of {gpu.learners_per_gpu}",
                )
            )
        if gpu.memory_cap_mb is None and gpu.memory_mb is None:
            problems.append(
                (
                    ("resources", "gpu", "memory_mb"),
                    "a shared GPU on Slurm needs the memory of one GPU (MB) to cap each learner's share, "
                    "or resources.gpu.memory_cap_mb (the hub does not run nvidia-smi on the nodes)",
                )
            )
    if slurm.environment == "apptainer" and slurm.apptainer_image is None:
        problems.append(
            (
                ("slurm", "apptainer_image"),
                "environment apptainer needs the SIF file on shared storage "
                "(apptainer build learner.sif docker-daemon://IMAGE)",
            )
        )
    if settings.workshop.end is not None and settings.workshop.start is None:
        problems.append(
            (("workshop", "start"), "workshop.end needs workshop.start (the reservation's start)")
        )
    return problems


register("slurm", unsupported_settings)
