"""Slurm: what `hub.backend: slurm` turns workshop.yaml into, on the instructor's machine and in the
hub (standard library and the settings model only; the hub's spawner lives in hub/backends/slurm.py).

- `supported`: what Slurm cannot take from workshop.yaml, refused at its key;
- `jobs`: a learner's job request (sbatch options) and the learner accounts;
- `planning`: the capacity table from the partition's nodes and the `scontrol create reservation` line;
- `apptainer`: the command that runs the learner image as a SIF;
- `environment`: the learner environment on shared storage, copied out of the built image.
"""
