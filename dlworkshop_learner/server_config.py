"""The learner's Jupyter server settings, applied by /etc/jupyter/jupyter_server_config.py."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dlworkshop_learner import layout

if TYPE_CHECKING:
    from traitlets.config import Config


def apply(c: Config, environ: Mapping[str, str] = os.environ) -> None:
    """Set the server's keys on its traitlets config `c`."""
    # Learner servers open in the work folder (the learner's persistent volume; on a Slurm cluster,
    # ~/work of the learner's account, which the job's environment names).
    work = environ.get(layout.WORK_ENV) or layout.WORK_FOLDER
    c.ServerApp.root_dir = work
    # TensorBoard through jupyter-server-proxy, at <server>/tensorboard/, reading the whole work folder.
    c.ServerProxy.servers = {
        "tensorboard": {
            "command": [
                "tensorboard",
                "--logdir",
                work,
                "--port",
                "{port}",
                "--path_prefix",
                "{base_url}tensorboard",
            ],
            "timeout": 30,
            "launcher_entry": {"title": "TensorBoard"},
        }
    }
    # The image ships no language servers, so jupyter-lsp would only scan for them at every start;
    # notebook-shim only carries the classic notebook server's settings over, and there is no
    # classic notebook here (a few hundredths of a CPU second a start, within the noise of
    # benchmarks/results/start-profile-20261129T2108Z.json).
    # JupyterLab shows the name a learner typed at login, also on a pre-warmed seat's server; the
    # hub's room view reads the server's memory cgroup (its OOM kills) and open notebooks.
    c.ServerApp.jpserver_extensions = {
        "jupyter_lsp": False,
        "notebook_shim": False,
        "dlworkshop_learner.identity": True,
        "dlworkshop_learner.memory": True,
    }
    # JupyterLab's status bar shows the work folder's use against its size (the learner's quota,
    # where the hub gives one), beside memory and CPU (jupyter-resource-usage).
    c.ResourceUseDisplay.track_disk_usage = True
    c.ResourceUseDisplay.disk_path = layout.WORK_FOLDER
    # JupyterLab's extension manager without its PyPI client: learners install no JupyterLab
    # extensions (the image has them all), and setting the client up costs every server start CPU
    # in the 09:00 rush (its module is imported either way; benchmarks/server_start.py measures
    # the set-up each way, and the whole start).
    c.LabApp.extension_manager = "readonly"
    # JupyterHub's single-user extension imports the hub's database layer (jupyterhub.log ->
    # jupyterhub.handlers -> jupyterhub.orm: SQLAlchemy, Alembic) whichever way it is started
    # (jupyterhub-singleuser or as a server extension, JupyterHub 5.5): no setting of JupyterHub's
    # leaves it out, so it stays (its cost: benchmarks/server_start.py's imports).
    # A learner's first notebook finds its kernel already started.
    c.ServerApp.kernel_manager_class = "dlworkshop_learner.kernels.PrestartedKernelManager"
    # CPU beside memory in JupyterLab's status bar, and in what the server says of itself at
    # /api/metrics/v1, which the hub's room view reads where the engine measures nothing.
    c.ResourceUseDisplay.track_cpu_percent = True
    # Not its Prometheus gauges, which it samples with psutil every second in every server, idle or
    # not, for a /metrics nobody scrapes here: most of what an idle server cost (the 09:00 rush).
    c.ResourceUseDisplay.enable_prometheus_metrics = False
