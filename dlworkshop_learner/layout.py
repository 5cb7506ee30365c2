"""Where things are inside the learner container, and the environment variables that say so.

The learner's side of dlworkshop's contract: defined here once, read by the learner package itself,
and re-exported by `dlworkshop.contract` for the image build, the hub and the deploy.
"""

from __future__ import annotations

import os
from pathlib import Path

# The learner's account, as in jupyter/docker-stacks.
USER = "jovyan"
UID = 1000
HOME = "/home/jovyan"
# The learner's persistent folder (their volume); the Jupyter server's root.
WORK_FOLDER = f"{HOME}/work"
# The instructor's material, mounted read-only inside the work folder (`dlworkshop share`).
SHARED_FOLDER = f"{WORK_FOLDER}/shared"
# Read-only material baked into the image.
PREFIX = "/opt/dlworkshop"
DATA_ROOT = f"{PREFIX}/data"
LESSONS_DIR = f"{PREFIX}/lessons"
VENV = "/opt/venv"
SERVER_PORT = 8888

# Files inside the data root, written when the image is built.
REGISTRY_FILE = "registry.yaml"
STAGE_PLAN_FILE = "stage-plan.json"
URL_MAP_FILE = "urls.json"

# Environment variables the image sets and the learner's processes read.
DATA_ENV = "DLWORKSHOP_DATA"
WORK_ENV = "DLWORKSHOP_WORK"
LESSONS_ENV = "DLWORKSHOP_LESSONS"
REGISTRY_ENV = "DLWORKSHOP_REGISTRY"
# Set per learner by the hub (GPU policies with a memory cap); applied when a kernel imports TensorFlow.
GPU_MEMORY_ENV = "DLWORKSHOP_GPU_MEMORY_MB"
# "0" switches the offline URL hook off.
OFFLINE_URLS_ENV = "DLWORKSHOP_OFFLINE_URLS"
# The hub's answer to a learner's server asking whether starts are queued (below the hub's API,
# JUPYTERHUB_API_URL): its kernel ahead waits until none are (dlworkshop_learner/kernels.py).
HUB_STARTS_API = "room/starts"
# JupyterHub's own names for a server's quota; a fallback where no cgroup says it.
CPU_LIMIT_ENV = "CPU_LIMIT"
MEM_LIMIT_ENV = "MEM_LIMIT"
# Below a learner's server's /api/: its memory cgroup and open notebooks, for the hub's room view.
MEMORY_API = "dlworkshop/memory"


def data_root() -> Path:
    """The folder holding the verified data copies, laid out <dataset>/<file>: $DLWORKSHOP_DATA, else
    the image's."""
    return Path(os.environ.get(DATA_ENV, DATA_ROOT))
