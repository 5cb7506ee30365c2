"""The hub pod of the Zero to JupyterHub chart, as far as the hub's configuration sees it: the files
the chart mounts at /usr/local/etc/jupyterhub (its ConfigMap's resource names, its Secret's merged
values and generated secrets, the hub configuration file and the `z2jh` helper), the files of
hub.extraFiles, and the environment of the hub container. Built from rendered values, then run
with inspect_hub.py in the hub image (`docker run`, as UID 1000 with an empty /srv/jupyterhub, as
the chart runs it) or in the test venv.

The chart's configuration file and `z2jh` module are the stand-ins beside this file, or the chart's
own (chart_own_files): those read absolute paths, so in the image as they are, and in the venv with
their mount point moved to the folder laid out here (`relocate`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlworkshop.kubernetes.chart import Chart, merge_values
from dlworkshop.kubernetes.helm import find_chart
from dlworkshop.kubernetes.manifests import NAMESPACE, OFFLINE_KUBECONFIG, RELEASE

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CHART_ROOT = "/usr/local/etc/jupyterhub"  # where the chart mounts its ConfigMap and Secret
# The chart's resource names (its ConfigMap), for the release and fullnameOverride "" (the default).
NAMES = {
    "hub": "hub",
    "proxy-api": "proxy-api",
    "proxy-public": "proxy-public",
    "singleuser": "singleuser",
    "image-pull-secret": "image-pull-secret",
    "user-scheduler": f"{RELEASE}-user-scheduler",
    "priority": f"{RELEASE}-default-priority",
}
CHECKOUT_ENV = "DLWORKSHOP_Z2JH_CHECKOUT"  # a git checkout of zero-to-jupyterhub-k8s
REPORT_MARKER = "--- dlworkshop hub report ---"  # as inspect_hub.py prints it
# What the chart generates and keeps in its Secret (stand-ins here).
PREWARM_TOKEN = "prewarm-token-made-by-the-chart"
COOKIE_SECRET = "c0ffee" * 10 + "abcd"
PROXY_TOKEN = "proxy-token-made-by-the-chart"


@dataclass
class HubPod:
    folder: Path  # the chart's /usr/local/etc/jupyterhub
    files: dict[str, Path]  # hub.extraFiles: mount path -> file here
    environment: dict[str, str] = field(default_factory=dict)


def chart_own_files(chart: Chart) -> dict[str, str] | None:
    """The chart's own jupyterhub_config.py and z2jh.py, from the released chart (find_chart: the
    one kept in dlworkshop/kubernetes/chart/<version>/jupyterhub, or $DLWORKSHOP_Z2JH_CHART: folder or
    .tgz), else from a checkout ($DLWORKSHOP_Z2JH_CHECKOUT); None when neither is here."""
    found = find_chart(chart)
    if found is not None:
        import helm_python

        with helm_python.Chart.load(found) as loaded:
            files = {item["name"]: item["data"] for item in loaded.files}
        return {name: files[f"files/hub/{name}"] for name in ("jupyterhub_config.py", "z2jh.py")}
    checkout = os.environ.get(CHECKOUT_ENV)
    if not checkout:
        return None
    return {
        name: subprocess.run(
            ["git", "-C", checkout, "show", f"{chart.source['commit']}:jupyterhub/files/hub/{name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name in ("jupyterhub_config.py", "z2jh.py")
    }


def hub_pod(
    values: dict[str, Any],
    chart: Chart,
    folder: Path,
    chart_files: dict[str, str] | None = None,
    existing_secret: dict[str, str] | None = None,
    relocate: bool = False,
) -> HubPod:
    """The chart's hub pod for these rendered values. chart_files: the chart's own
    jupyterhub_config.py and z2jh.py (name -> text); default the stand-ins. existing_secret: the
    keys of the Secret hub.existingSecret names. relocate: the chart's files read the folder where
    they lie instead of the mount point (to run them outside the image)."""
    merged = merge_values(chart.defaults, values)
    folder.mkdir(parents=True)
    (folder / "config").mkdir()
    for name, full_name in NAMES.items():
        (folder / "config" / name).write_text(full_name)
    secret = folder / "secret"
    secret.mkdir()
    release = {"Name": RELEASE, "Namespace": NAMESPACE, "Service": "Helm"}
    chart_meta = {"Name": "jupyterhub", "Version": chart.version, "AppVersion": chart.source["app_version"]}
    (secret / "values.yaml").write_text(yaml.safe_dump({**merged, "Release": release, "Chart": chart_meta}))
    (secret / "hub.config.JupyterHub.cookie_secret").write_text(COOKIE_SECRET)
    (secret / "hub.config.CryptKeeper.keys").write_text("ab" * 32)
    (secret / "hub.config.ConfigurableHTTPProxy.auth_token").write_text(PROXY_TOKEN)
    for service in merged["hub"].get("services") or {}:
        (secret / f"hub.services.{service}.apiToken").write_text(
            PREWARM_TOKEN if service == "prewarm" else uuid.uuid4().hex
        )
    for name in ("jupyterhub_config.py", "z2jh.py"):
        if chart_files:
            text = chart_files[name]
            (folder / name).write_text(text.replace(CHART_ROOT, str(folder)) if relocate else text)
        else:
            shutil.copy(HERE / name, folder / name)
    shutil.copy(HERE / "inspect_hub.py", folder / "inspect_hub.py")
    (folder / "kubeconfig").write_text(OFFLINE_KUBECONFIG % NAMESPACE)
    files = {}
    extra = folder.parent / "extra-files"
    extra.mkdir()
    for key, file in (merged["hub"].get("extraFiles") or {}).items():
        (extra / key).write_text(file["stringData"])
        files[file["mountPath"]] = extra / key
    if merged["hub"].get("existingSecret"):
        # The chart mounts it whole at existing-secret/; hub.extraVolumeMounts pick files of it.
        assert existing_secret is not None, "the values name an existing Secret: give its keys"
        (folder / "existing-secret").mkdir()
        for key, text in existing_secret.items():
            (folder / "existing-secret" / key).write_text(text)
        for mount in merged["hub"].get("extraVolumeMounts") or []:
            if mount["name"] == "existing-secret":
                files[mount["mountPath"]] = folder / "existing-secret" / mount["subPath"]
    # The hub container's environment: the chart's own, then hub.extraEnv.
    environment = {
        "PYTHONUNBUFFERED": "1",
        "HELM_RELEASE_NAME": RELEASE,
        "POD_NAMESPACE": NAMESPACE,
        "CONFIGPROXY_AUTH_TOKEN": PROXY_TOKEN,
        # Kubernetes' variables for the chart's Services.
        "HUB_SERVICE_PORT": "8081",
        "PROXY_API_SERVICE_PORT": "8001",
        **merged["hub"].get("extraEnv", {}),
    }
    return HubPod(folder=folder, files=files, environment=environment)


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return json.loads(result.stdout.split(REPORT_MARKER + "\n", 1)[1])


def run_on_host(pod: HubPod, hub_volume: Path) -> dict[str, Any]:
    return _report(inspect_on_host(pod, hub_volume))


def inspect_on_host(pod: HubPod, hub_volume: Path) -> subprocess.CompletedProcess[str]:
    """inspect_hub.py with this checkout's packages (the stand-ins only: they read paths relative to
    themselves); the extra files where their mount paths point, through the environment."""
    hub_volume.mkdir()
    environment = {
        **os.environ,
        **pod.environment,
        "PYTHONPATH": str(REPO),
        "KUBECONFIG": str(pod.folder / "kubeconfig"),
    }
    for mount_path, path in pod.files.items():
        if environment.get("DLWORKSHOP_CONFIG") == mount_path:
            environment["DLWORKSHOP_CONFIG"] = str(path)
    return subprocess.run(
        [sys.executable, str(pod.folder / "inspect_hub.py"), str(pod.folder)],
        capture_output=True,
        text=True,
        cwd=hub_volume,
        env=environment,
        timeout=120,
    )


def run_in_image(pod: HubPod, image: str, name_prefix: str) -> dict[str, Any]:
    """inspect_hub.py in the hub image, as the chart runs the hub: UID 1000, the chart's files at
    their mount points, an empty hub volume at /srv/jupyterhub (hiding what the image put there),
    no network."""
    command = [
        "docker",
        "run",
        "--rm",
        "--name",
        f"{name_prefix}-{uuid.uuid4().hex[:8]}",
        "--network",
        "none",
        "--user",
        "1000:1000",
        "--mount",
        "type=tmpfs,destination=/srv/jupyterhub,tmpfs-mode=1777",
        "--volume",
        f"{pod.folder}:{CHART_ROOT}:ro",
        "--workdir",
        "/srv/jupyterhub",
        "--env",
        f"KUBECONFIG={CHART_ROOT}/kubeconfig",
    ]
    for mount_path, path in pod.files.items():
        command += ["--volume", f"{path}:{mount_path}:ro"]
    for key, value in pod.environment.items():
        command += ["--env", f"{key}={value}"]
    command += ["--entrypoint", "python", image, f"{CHART_ROOT}/inspect_hub.py", CHART_ROOT]
    return _report(subprocess.run(command, capture_output=True, text=True, timeout=180))
