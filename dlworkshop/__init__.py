"""dlworkshop: run the "Introduction to deep learning" lesson as a hands-on workshop.

One package, installed on the instructor's machine, the control node, in the hub and in the learner
image (whose notebooks call `dlworkshop.data.locate`); its folders say where their code runs:

- the top level is the shared core: `settings/`, `contract`, `errors`, `capacity`, `gpus`,
  `accounts`, `hubclient`, `cgroup_cpu`, `engines`, `lessons` (the hub imports only this core and
  the engines' pure modules: docs/architecture.md);
- `docker_host/`: what any Docker host of the workshop needs (`up` and the deploy);
- `local/`: `up`/`down` on this machine; `clients/`: clients of a running hub;
- `deploy/`, `kubernetes/`, `slurm/`: the engines; `cli/`, `data/`, `image/`: the command, datasets, image.

Keep this module import-light: the learner image imports parts of the package in every kernel.
"""

__version__ = "0.1.0"
