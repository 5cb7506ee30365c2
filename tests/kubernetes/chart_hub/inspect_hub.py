"""What the hub would run with under the Zero to JupyterHub chart, printed as JSON after a marker line.

Run by tests/kubernetes/test_hub_under_the_chart.py, inside the hub image (as the chart's hub pod
runs it) and in the test venv: loads `jupyterhub_config.py` from the folder given (the chart's, or
the stand-in beside this file) the way JupyterHub loads its config file, then builds the spawner
and the authenticator JupyterHub would build from it, asks the spawner for a learner's pod
(offline: the kubeconfig in $KUBECONFIG names no reachable cluster), and reports.

    python inspect_hub.py /usr/local/etc/jupyterhub
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

LEARNER = "learner-01"
# The report follows this line on stdout (the chart's configuration prints what it loads before it).
REPORT_MARKER = "--- dlworkshop hub report ---"
SPAWNER_TRAITS = (
    "image",
    "image_pull_policy",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "uid",
    "fs_gid",
    "allow_privilege_escalation",
    "container_security_context",
    "storage_capacity",
    "storage_class",
    "node_selector",
    "tolerations",
    "profile_list",
    "default_url",
    "notebook_dir",
    "namespace",
    "start_timeout",
    "http_timeout",
    "admitted_start_timeout",
    "start_capacity",
    "priority_class_name",
    "scheduler_name",
)
AUTHENTICATOR_TRAITS = (
    "access_code",
    "seats",
    "seats_file",
    "accounts_file",
    "attempts_per_minute",
    "allow_all",
    "admin_users",
)


def plain(value: Any) -> Any:
    """JSON-ready: classes by their dotted name, Kubernetes objects as the API spells them."""
    from kubernetes_asyncio.client import ApiClient

    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(item) for item in value)
    if isinstance(value, bytes):
        return value.decode()
    if callable(value) or type(value).__module__.startswith("hub."):
        # Hooks (a bound method's qualified name) and the hub's own objects (the room view), by name.
        named = value if callable(value) else type(value)
        return (
            f"{getattr(named, '__module__', '')}.{getattr(named, '__qualname__', type(named).__qualname__)}"
        )
    # Serialising uses no connection: an ApiClient without one (a connection needs an event loop).
    return ApiClient.__new__(ApiClient).sanitize_for_serialization(value)


async def learner_spawner(c: Any) -> dict[str, Any]:
    """The learner's spawner as JupyterHub makes it, and the pod it would ask Kubernetes for."""
    from jupyterhub import orm
    from jupyterhub.objects import Hub, Server
    from jupyterhub.user import User

    spawner_class = c.JupyterHub.spawner_class
    if isinstance(spawner_class, str):
        spawner_class = import_item(spawner_class)
    db = orm.new_session_factory("sqlite://")()
    orm_user = orm.User(name=LEARNER)
    db.add(orm_user)
    db.commit()
    user = User(orm_user, settings={"config": c, "hub": Hub(), "spawner_class": spawner_class})
    spawner = user._new_spawner("", spawner_class=spawner_class)
    orm_server = orm.Server(base_url=f"/user/{LEARNER}/")
    db.add(orm_server)
    db.commit()
    spawner.server = Server(orm_server=orm_server)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    return {
        "class": plain(type(spawner)),
        "bases": [plain(base) for base in type(spawner).__mro__],
        "traits": {name: plain(getattr(spawner, name)) for name in SPAWNER_TRAITS if spawner.has_trait(name)},
        "init_containers": [plain(container)["name"] for container in spawner.init_containers],
        "pod": plain(pod),
    }


def authenticator(c: Any) -> dict[str, Any]:
    authenticator_class = c.JupyterHub.authenticator_class
    if isinstance(authenticator_class, str):
        authenticator_class = import_item(authenticator_class)
    made = authenticator_class(config=c)
    return {
        "class": plain(authenticator_class),
        "traits": {name: plain(getattr(made, name)) for name in AUTHENTICATOR_TRAITS if made.has_trait(name)},
    }


def main(config_dir: str) -> None:
    # As `jupyterhub --config <dir>/jupyterhub_config.py` loads it.
    c = PyFileConfigLoader("jupyterhub_config.py", path=config_dir).load_config()
    from tornado.httpclient import AsyncHTTPClient

    import hub

    report = {
        "hub_package": str(Path(hub.__file__).resolve().parent),
        "http_client": AsyncHTTPClient.configured_class().__name__,
        "jupyterhub": {key: plain(value) for key, value in c.JupyterHub.items()},
        "proxy": {key: plain(value) for key, value in c.ConfigurableHTTPProxy.items()},
        "spawner": asyncio.run(learner_spawner(c)),
        "authenticator": authenticator(c),
        # What configuring the hub left in its working folder (the chart's hub volume).
        "hub_volume": sorted(str(path.relative_to(Path.cwd())) for path in Path.cwd().rglob("*")),
    }
    print(REPORT_MARKER)
    json.dump(report, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
