"""Every name, path, label, port and URL rule that more than one place shares, defined once.

The places: the instructor's machine (this package's CLI), the hub container (`hub/`), the learner
image (`dlworkshop_learner`, the Dockerfile) and the deploy target (`ansible/`, which receives these
values as extra vars). Each of them imports its names from here; tests check the real outputs
(extra vars, hub config, image labels) against this module.

Standard library only: the hub container and the image build import it too.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath

from dlworkshop_learner import layout as learner

__all__ = ["learner"]

# The settings file: an explicit path, else this variable, else ./workshop.yaml.
CONFIG_ENV = "DLWORKSHOP_CONFIG"
CONFIG_NAME = "workshop.yaml"

# ---- The hub container ------------------------------------------------------------------------
HUB_HOME = PurePosixPath("/srv/jupyterhub")
# The hub's volume: database, secrets, seats; survives re-creating the container.
HUB_DATA = HUB_HOME / "data"
HUB_SETTINGS = HUB_HOME / CONFIG_NAME
HUB_ACCOUNTS = HUB_HOME / "accounts.csv"
# A site's own JupyterHub configuration (hub.extra_config, shipped by `up` and the deploy): its *.py
# files, loaded after the workshop's in name order, as TLJH loads its jupyterhub_config.d.
HUB_EXTRA_CONFIG = HUB_HOME / "jupyterhub_config.d"
# What lives and dies with the hub process (its proxy's pid file): emptied whenever the hub starts,
# a tmpfs in the hub container, systemd's RuntimeDirectory on a login node. A pid file that outlived
# a crash names whatever process took that number in the restarted hub, and JupyterHub, unable to
# stop it, exits after it has already taken over the starts the crash interrupted.
HUB_RUNTIME_NAME = "dlworkshop-hub"
HUB_RUNTIME = PurePosixPath("/run") / HUB_RUNTIME_NAME
# The host's cgroup files, read-only: what each learner's start cost in CPU, for the admission of
# `hub.start_capacity: auto` (dlworkshop/cgroup_cpu.py: Docker's stats say 0 on some hosts).
HOST_CGROUP = "/sys/fs/cgroup"
HUB_HOST_CGROUP = PurePosixPath("/host/sys/fs/cgroup")
# The hub's code in the hub image, outside HUB_HOME, which Z2JH's chart mounts the hub's volume
# over (hub/Dockerfile: the image's Python finds the `hub` package there from any folder).
HUB_CODE = PurePosixPath("/usr/local/share/dlworkshop")
HUB_CONFIG_FILE = HUB_CODE / "jupyterhub_config.py"
# The instructor's shared folder (`dlworkshop share` copies into it; learners see it read-only).
HUB_SHARED = HUB_HOME / "shared"
# Certificate and key, when `dlworkshop up` serves TLS from the hub's own proxy.
HUB_TLS_DIR = HUB_HOME / "tls"
HUB_TLS_CERT = HUB_TLS_DIR / "fullchain.pem"
HUB_TLS_KEY = HUB_TLS_DIR / "privkey.pem"
# The proxy's public port inside the container, and the hub's own API port.
HUB_PORT = 8000
HUB_API_PORT = 8081
HUB_API_URL_LOCAL = f"http://127.0.0.1:{HUB_API_PORT}/hub/api"

# Files on the hub volume.
DATABASE_FILE = "jupyterhub.sqlite"
COOKIE_SECRET_FILE = "jupyterhub_cookie_secret"
PROXY_TOKEN_FILE = "proxy_auth_token"
PREWARM_TOKEN_FILE = "prewarm_token"
SEATS_FILE = "seats.json"
# The spares the hub has started during the workshop (hub/spares.py): seats beyond prewarm.seats.
SPARES_FILE = "spares.json"
# shared-code mode: names claimed at first login and their secrets' hashes (hub/claims.py).
CLAIMS_FILE = "claims.json"
# Encrypts JupyterHub's auth_state (in shared-code mode: the name a learner typed, for JupyterLab).
AUTH_STATE_KEY_FILE = "auth_state_key"

# The room view (hub/room.py): stops and culls, for `dlworkshop status`; the workshop closed early
# (`dlworkshop close`, hub/closing.py).
STOPS_FILE = "stops.json"
CLOSED_FILE = "closed.json"
# The token `dlworkshop status` reads the room with inside the hub container of `dlworkshop up`.
ROOM_TOKEN_FILE = "room_token"
# Where the hub keeps them when it runs outside a container (a login node): this variable names the
# folder that stands for HUB_HOME (data/, accounts.csv), for the hub and its services.
HUB_HOME_ENV = "DLWORKSHOP_HUB_HOME"
# The Slurm backend's map of workshop logins to the cluster's Unix accounts, on the hub's data folder.
CLUSTER_ACCOUNTS_FILE = "cluster-accounts.json"


def hub_home() -> PurePosixPath:
    return PurePosixPath(os.environ.get(HUB_HOME_ENV) or HUB_HOME)


def hub_data() -> PurePosixPath:
    """HUB_DATA, or its place under $DLWORKSHOP_HUB_HOME."""
    return hub_home() / HUB_DATA.relative_to(HUB_HOME)


def hub_accounts() -> PurePosixPath:
    return hub_home() / HUB_ACCOUNTS.relative_to(HUB_HOME)


def hub_extra_config() -> PurePosixPath:
    """HUB_EXTRA_CONFIG, or its place under $DLWORKSHOP_HUB_HOME."""
    return hub_home() / HUB_EXTRA_CONFIG.relative_to(HUB_HOME)


def site_config_files(folder: Path) -> list[Path]:
    """The files of a site's configuration folder the hub loads (and `up` and the deploy ship):
    its *.py files, in name order; none where the folder is missing."""
    return sorted(path for path in folder.glob("*.py") if path.is_file())


# Hub-managed services (names are also their roles' names).
CULLER_SERVICE = "idle-culler"
PREWARM_SERVICE = "prewarm"
# shared-code mode: admins release claimed names through it (hub/claims.py), on this port in the hub.
NAMES_SERVICE = "names"
NAMES_SERVICE_PORT = 10102

# The room view: one hub API route (below /hub/api) and the scope that reads it, which admins and
# helpers (auth.helpers) hold; `dlworkshop status` asks it with the room service's token locally,
# with an admin's or a helper's token from anywhere.
ROOM_API = "room"
ROOM_SCOPE = "custom:dlworkshop:room"
ROOM_SERVICE = "room"
# JupyterHub roles of the workshop's staff beside its admins.
HELPER_ROLE = "helper"
ROOM_ROLE = "room-viewer"

# Spawner.start_timeout of every hub: JupyterHub's bound on a whole start, and a start waits its
# turn in the admission queue first (hub/spawning.py), so time queued never fails a learner. The
# start once admitted has its own bound (hub.start_timeout). Also the rendered Z2JH values'
# singleuser.startTimeout, which the chart hands to KubeSpawner.
QUEUED_START_TIMEOUT = 24 * 3600

# ---- Labels -----------------------------------------------------------------------------------
LABEL_HUB = "org.dlworkshop.hub"
LABEL_USER = "org.dlworkshop.user"
LABEL_GPU_DEVICES = "org.dlworkshop.gpu.devices"
LABEL_GPU_MEMORY_CAP = "org.dlworkshop.gpu.memory-cap-mb"
# A learner's size-limited work folder: the prepared slot (file system image) it lives on.
LABEL_WORK_SLOT = "org.dlworkshop.work-slot"
LABEL_VARIANT = "org.dlworkshop.variant"
LABEL_LOCK_SHA256 = "org.dlworkshop.lock-sha256"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_TITLE = "org.opencontainers.image.title"


# ---- Learners' containers and volumes, scoped by their hub --------------------------------------
# DockerSpawner expands {raw_username}; learner names are already Docker-safe ([a-z0-9_-]).
USERNAME_TEMPLATE = "{raw_username}"


def learner_container_name(hub: str, username: str = USERNAME_TEMPLATE) -> str:
    """Scoped by the hub, so two hubs on one machine never share a learner's container."""
    return f"{hub}-learner-{username}"


def work_volume_prefix(hub: str) -> str:
    return f"{hub}-work-"


def work_volume_name(hub: str, username: str = USERNAME_TEMPLATE) -> str:
    return f"{work_volume_prefix(hub)}{username}"


def shared_volume_name(hub: str) -> str:
    """The instructor's shared folder: read-write in the hub container, read-only in learners'."""
    return f"{hub}-shared"


# ---- Size-limited work folders (resources.disk) -------------------------------------------------
# Each slot is a fixed-size ext4 image on the host, attached to a loop device and reached through a
# link named after the slot (loop numbers change at reboot; the link follows the image). The links
# live under /dev, which is empty after a reboot: a volume can never mount a stale loop number.
HOST_WORK_DEVICES = PurePosixPath("/dev/dlworkshop")
WORK_SLOT_FS = "ext4"


def work_slot_name(number: int) -> str:
    return f"slot-{number:03d}"


def free_slot_volume_name(hub: str, slot: str) -> str:
    """A prepared slot nobody has claimed yet; the hub claims it for a learner by creating the
    learner's work volume on the same device and removing this one."""
    return f"{hub}-free-{slot}"


def work_slot_device(hub: str, slot: str) -> PurePosixPath:
    return HOST_WORK_DEVICES / hub / slot


# ---- Slurm ----------------------------------------------------------------------------------
# Every learner's job carries this name: the hub finds its jobs in squeue by it.
SLURM_JOB_NAME = "dlworkshop-learner"
# The spawn page's line once a learner's job runs; the smoke test reads node and queue time from it.
SLURM_PLACED = re.compile(
    r"job (?P<job>\d+) runs on (?P<node>\S+) after (?P<queued>\d+) s in the Slurm queue"
)


# The hub on a login node: its venv, code and proxy (from the hub image), and the hub account's home
# (settings, accounts, the hub's data folder: DLWORKSHOP_HUB_HOME).
CLUSTER_HUB_PREFIX = PurePosixPath("/opt/dlworkshop-hub")


def cluster_hub_home(hub_user: str) -> PurePosixPath:
    return PurePosixPath("/var/lib") / hub_user


def slurm_placed_message(job_id: str, node: str, queued_seconds: float) -> str:
    return f"Your server's job {job_id} runs on {node} after {queued_seconds:.0f} s in the Slurm queue"


# ---- The host ---------------------------------------------------------------------------------
# The Docker engine keeps containers running while it restarts (an upgrade, a changed daemon.json):
# learners' servers and kernels, and the hub, outlive it. The deploy sets it; `up` and `check` warn
# where the engine has it off.
DOCKER_LIVE_RESTORE = True
# Every container's log (learners', the hub's) is capped on disk by its own options, whatever the
# engine's defaults (Docker's json-file keeps everything): a learner printing to the container's
# stdout (/proc/1/fd/1) would otherwise fill the host's disk past every quota. resources.log_max is
# the whole cap, split over LOG_FILES rotated files; the deploy's daemon.json gets the same options.
LOG_DRIVER = "json-file"
LOG_FILES = 3
# The engine rotates a file once it has reached max-size, after the entry that reached it: one
# entry over per file. An entry holds at most 16 KiB of output, JSON-escaped at most 6 bytes each.
LOG_ENTRY_MAX = 96 * 1024


def log_options(log_max: int) -> dict[str, str]:
    """The json-file driver's options for a log of at most `log_max` bytes on disk, the entry that
    tips each file over included (sizes in plain bytes: Docker reads 10m as decimal megabytes)."""
    per_file = log_max // LOG_FILES - LOG_ENTRY_MAX
    return {"max-size": str(max(LOG_ENTRY_MAX, per_file)), "max-file": str(LOG_FILES)}


def docker_log_config(log_max: int) -> dict[str, object]:
    """A container's LogConfig (the Docker API's HostConfig.LogConfig, as the SDK takes it)."""
    return {"Type": LOG_DRIVER, "Config": log_options(log_max)}


# Where `up` (as root) and the deploy keep the hub's settings and accounts files.
HOST_STATE = PurePosixPath("/var/lib/dlworkshop")
STATE_ENV = "DLWORKSHOP_STATE"
HOST_TLS = PurePosixPath("/etc/dlworkshop/tls")
HOST_GPU_INVENTORY = PurePosixPath("/etc/dlworkshop/gpus.json")
# Cloud credentials live behind this address: learners never reach it.
METADATA_ADDRESS = "169.254.169.254"
# The host's local time, mounted into the hub: a naive workshop.start means the host's clock.
LOCALTIME = "/etc/localtime"
DOCKER_SOCKET = "/var/run/docker.sock"


# On the instructor's machine, in state_dir(): the key the smoke-test learner's and the load test's
# secrets are derived from (dlworkshop/clients/instructor.py).
INSTRUCTOR_KEY_FILE = "instructor-key"


def state_dir() -> Path:
    """Where dlworkshop keeps its files on this machine: HOST_STATE as root, else the user's state
    folder; $DLWORKSHOP_STATE overrides both."""
    default = Path(HOST_STATE) if os.geteuid() == 0 else Path.home() / ".local/state/dlworkshop"
    return Path(os.environ.get(STATE_ENV) or default)


def work_images_dir(hub: str, state: Path | PurePosixPath | None = None) -> Path:
    """The learners' work-folder images of one hub on the host (under `state`: the deploy's
    HOST_STATE, else this machine's state folder)."""
    return Path(state if state is not None else state_dir()) / hub / "work-images"


def bridge_name(network: str) -> str:
    """The learners' bridge interface, named so firewall rules can name it (15 characters max)."""
    return "dlw-" + hashlib.sha256(network.encode()).hexdigest()[:8]


# ---- URLs -------------------------------------------------------------------------------------
LOOPBACK_BINDS = ("127.0.0.1", "localhost", "::1")


def is_loopback(bind: str) -> bool:
    return bind in LOOPBACK_BINDS


def local_address(bind: str) -> str:
    """Where this machine reaches a port bound on `bind`."""
    return "localhost" if bind in ("127.0.0.1", "0.0.0.0", "localhost") else bind


def hub_url(
    public_url: str | None, tls_domain: str | None, tls: bool, bind: str, port: int, tls_port: int = 443
) -> str:
    """What learners open: the public URL when given; else the TLS endpoint (the deploy's proxy on
    443, or `up`'s hub on hub.tls.port); else the hub's own port on this machine."""
    if public_url:
        return public_url.rstrip("/")
    if tls and tls_domain:
        return f"https://{tls_domain}" + ("" if tls_port == 443 else f":{tls_port}")
    return f"http://{local_address(bind)}:{port}"
