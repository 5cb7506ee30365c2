"""A stand-in for the Zero to JupyterHub chart's hub configuration file (jupyterhub/files/hub/
jupyterhub_config.py of chart 4.4.0), written from the chart's documented behaviour for
tests/kubernetes/test_hub_under_the_chart.py (the chart's code is not kept in this repository; with
DLWORKSHOP_Z2JH_CHECKOUT set, the tests run the chart's own file instead of this one).

What matters to the hub.extraConfig it runs, in the chart's order: tornado's curl HTTP client; the
hub's database, its addresses and the proxy in its own pod; KubeSpawner from singleuser.* and
scheduling.* (dlworkshop.kubernetes.manifests.chart_spawner_config, the mirror that
tests/kubernetes/test_chart_mirror.py compares with the chart's file); the services (the chart's
culler when cull.enabled, then hub.services, each with the API token the chart keeps in its
Secret) and roles; the secrets; the hub.config pass-through; then each hub.extraConfig entry,
sorted by key, exec'd in this file's namespace, where `c` is JupyterHub's config.
"""

import os
import sys
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

c = get_config()  # noqa: F821  (traitlets' config loader provides it)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from z2jh import get_config, get_name, get_name_env, get_secret_value, set_config_if_not_none  # noqa: E402

from dlworkshop.kubernetes.manifests import chart_spawner_config  # noqa: E402

# The chart's hub talks to the proxy's API with curl (pycurl): at scale, the default client is too slow.
AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.ConfigurableHTTPProxy.api_url = (
    f"http://{get_name('proxy-api')}:{get_name_env('proxy-api', '_SERVICE_PORT')}"
)
c.ConfigurableHTTPProxy.should_start = False  # the proxy has a pod of its own
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 60
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
if get_config("hub.db.type") == "sqlite-pvc":  # the hub's volume, mounted at /srv/jupyterhub (its cwd)
    c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
elif get_config("hub.db.type") == "sqlite-memory":
    c.JupyterHub.db_url = "sqlite://"
else:
    set_config_if_not_none(c.JupyterHub, "db_url", "hub.db.url")
for trait, key in (
    ("concurrent_spawn_limit", "concurrentSpawnLimit"),
    ("active_server_limit", "activeServerLimit"),
    ("base_url", "baseUrl"),
    ("allow_named_servers", "allowNamedServers"),
    ("named_server_limit_per_user", "namedServerLimitPerUser"),
    ("authenticate_prometheus", "authenticatePrometheus"),
    ("redirect_to_server", "redirectToServer"),
    ("shutdown_on_logout", "shutdownOnLogout"),
    ("template_paths", "templatePaths"),
    ("template_vars", "templateVars"),
):
    set_config_if_not_none(c.JupyterHub, trait, f"hub.{key}")
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.hub_connect_url = f"http://{get_name('hub')}:{get_name_env('hub', '_SERVICE_PORT')}"

spawner = chart_spawner_config(
    {key: get_config(key) for key in ("nameOverride", "hub", "singleuser", "scheduling")},
    release=get_config("Release.Name"),
    namespace=os.environ.get("POD_NAMESPACE", "default"),
)
for section in ("KubeSpawner", "Spawner"):
    c[section].update(spawner[section])

c.JupyterHub.services = []
c.JupyterHub.load_roles = []
if get_config("cull.enabled", False):
    command = [
        "python3",
        "-m",
        "jupyterhub_idle_culler",
        "--url=http://localhost:8081/hub/api",
        f"--timeout={get_config('cull.timeout')}",
        f"--cull-every={get_config('cull.every')}",
    ]
    c.JupyterHub.services.append({"name": "jupyterhub-idle-culler", "command": command})
    c.JupyterHub.load_roles.append(
        {
            "name": "jupyterhub-idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["jupyterhub-idle-culler"],
        }
    )
for key, service in (get_config("hub.services") or {}).items():
    service = {"name": key, **{k: v for k, v in service.items() if k != "apiToken"}}
    service["api_token"] = get_secret_value(f"hub.services.{key}.apiToken")
    c.JupyterHub.services.append(service)
for key, role in (get_config("hub.loadRoles") or {}).items():
    c.JupyterHub.load_roles.append({"name": key, **role})

c.JupyterHub.cookie_secret = get_secret_value("hub.config.JupyterHub.cookie_secret")
c.CryptKeeper.keys = get_secret_value("hub.config.CryptKeeper.keys").split(";")
secrets = {
    "JupyterHub": ("proxy_auth_token", "cookie_secret", "services"),
    "ConfigurableHTTPProxy": ("auth_token",),
}
for section, options in (get_config("hub.config") or {}).items():
    c[section].update({k: v for k, v in options.items() if k not in secrets.get(section, ())})

for _key, code in sorted((get_config("hub.extraConfig") or {}).items()):
    exec(code)
