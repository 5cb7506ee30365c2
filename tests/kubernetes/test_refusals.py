"""Malformed or unsupported settings for a Kubernetes workshop: each ends in one clear message that
names its key (with the line in workshop.yaml), never in values that silently drop it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlworkshop.errors import ConfigError
from dlworkshop.kubernetes.values import render_z2jh
from dlworkshop.settings import load_settings
from tests.conftest import REPO

pytestmark = pytest.mark.kubernetes

KUBERNETES = "auth: {mode: shared-code, access_code: x}\nhub:\n  backend: kubernetes\n"
CUDA = "image: {variant: cuda}\n"

REFUSED = [
    pytest.param(
        KUBERNETES + "  port: 8443\n",
        "w.yaml:4: hub.port: only the Docker backend reads it: the chart's proxy-public Service listens on 80",
        id="docker-only-hub-port",
    ),
    pytest.param(
        KUBERNETES + "resources: {pids: 1024}\n",
        "w.yaml:4: resources.pids: only the Docker backend reads it: a pod's process limit is the "
        "kubelet's podPidsLimit",
        id="docker-only-pids",
    ),
    pytest.param(
        KUBERNETES + CUDA + "resources: {gpu: {policy: whole, devices: ['0', '1']}}\n",
        "w.yaml:5: resources.gpu.devices: only the Docker backend reads it: the NVIDIA device plugin picks",
        id="docker-only-gpu-devices",
    ),
    pytest.param(
        KUBERNETES + "resources: {disk: 2G}\n",
        "w.yaml:4: resources.disk: only the Docker backend reads it: a learner's work folder is a PVC: "
        "its size, kubernetes.storage_size, is the quota",
        id="docker-only-disk-quota",
    ),
    pytest.param(
        KUBERNETES + "resources:\n  extra_mounts: [{source: /srv/data, target: /data}]\n",
        "w.yaml:5: resources.extra_mounts: only the Docker backend reads it: a host folder exists on one node",
        id="docker-only-extra-mounts",
    ),
    pytest.param(
        KUBERNETES + "resources: {shared_folder: true}\n",
        "w.yaml:4: resources.shared_folder: a shared folder on a cluster needs a ReadWriteMany volume",
        id="shared-folder",
    ),
    pytest.param(
        KUBERNETES + "  tls: {domain: workshop.example.org}\n",
        "w.yaml:4: hub.tls.domain: a domain served over plain HTTP sends the access code in clear",
        id="domain-without-tls",
    ),
    pytest.param(
        KUBERNETES + "kubernetes: {ingress: {class_name: nginx, tls_secret: workshop-tls}}\n",
        "w.yaml:4: kubernetes.ingress: needs hub.tls.domain, the name it serves",
        id="ingress-without-domain",
    ),
    pytest.param(
        KUBERNETES
        + "  tls: {mode: letsencrypt, domain: w.example.org, email: a@example.org}\n"
        + "kubernetes: {tls_secret: workshop-tls}\n",
        "w.yaml:5: kubernetes.tls_secret: serves the certificate itself; hub.tls.mode letsencrypt would "
        "serve another: set it to none",
        id="tls-secret-and-letsencrypt",
    ),
    pytest.param(
        KUBERNETES
        + "  tls: {domain: w.example.org}\n"
        + "kubernetes:\n  tls_secret: workshop-tls\n  ingress: {class_name: nginx, tls_secret: w-tls}\n",
        "w.yaml:6: kubernetes.tls_secret: the Ingress terminates TLS with kubernetes.ingress.tls_secret",
        id="tls-secret-and-ingress",
    ),
    pytest.param(
        KUBERNETES
        + "  tls: {mode: files, certificate: tls.crt, key: tls.key}\n"
        + "kubernetes: {existing_secret: hub-secrets}\n",
        "hub.tls.mode: files puts the TLS key into the values; with kubernetes.existing_secret keep it",
        id="existing-secret-and-key-files",
    ),
    pytest.param(
        KUBERNETES + "kubernetes: {mig_strategy: single}\n",
        "w.yaml:4: kubernetes.mig_strategy: only GPU policy mig reads it (the policy is none)",
        id="mig-strategy-without-mig",
    ),
    pytest.param(
        KUBERNETES + "kubernetes: {image_pull_secrets: [Registry_Creds]}\n",
        "kubernetes.image_pull_secrets.0: String should match pattern",
        id="secret-name-not-a-kubernetes-name",
    ),
    pytest.param(
        KUBERNETES + "  tls: {mode: self-signed, domain: workshop.example.org}\n",
        "w.yaml:4: hub.tls.mode: Z2JH has no self-signed mode",
        id="self-signed-tls",
    ),
    pytest.param(
        KUBERNETES
        + CUDA
        + "resources: {gpu: {policy: whole}}\nkubernetes: {gpu_resource: nvidia.com/gpus}\n",
        "w.yaml:6: kubernetes.gpu_resource: nvidia.com/gpus is not a resource NVIDIA's device plugin advertises",
        id="wrong-gpu-resource",
    ),
    pytest.param(
        KUBERNETES + CUDA + "resources: {gpu: {policy: shared, per_learner: 1/4}}\n",
        "w.yaml:5: resources.gpu.memory_mb: a shared GPU on Kubernetes needs the memory of one GPU",
        id="shared-gpu-without-memory",
    ),
    pytest.param(
        KUBERNETES
        + CUDA
        + "resources: {gpu: {policy: shared, per_learner: 1/6, memory_mb: 24000}}\n"
        + "kubernetes: {time_slicing_replicas: 4}\n",
        "w.yaml:6: kubernetes.time_slicing_replicas: the device plugin's 4 replicas per GPU disagree with "
        "per_learner 0.166667 (6 learners per GPU)",
        id="time-slicing-disagrees",
    ),
    pytest.param(
        KUBERNETES + CUDA + "resources: {gpu: {policy: mig}}\n",
        "kubernetes.mig_profile: policy mig on Kubernetes needs the MIG profile the nodes are partitioned into",
        id="mig-without-profile",
    ),
    pytest.param(
        KUBERNETES + CUDA + "resources: {gpu: {policy: mig}}\nkubernetes: {mig_profile: 1g.10GB}\n",
        "w.yaml:6: kubernetes.mig_profile: 1g.10GB is not a MIG profile such as 1g.10gb",
        id="malformed-mig-profile",
    ),
    pytest.param(
        KUBERNETES + "resources: {gpu: {policy: whole}}\n",
        "image.variant: GPU policy whole gives each learner a GPU the cpu image cannot use; use cuda",
        id="gpu-with-cpu-image",
    ),
    pytest.param(
        KUBERNETES + "kubernetes: {mig_profile: 1g.10gb}\n",
        "w.yaml:4: kubernetes.mig_profile: only GPU policy mig reads it (the policy is none)",
        id="setting-of-another-policy",
    ),
    pytest.param(
        KUBERNETES + "resources: {log_max: 50M}\n",
        "w.yaml:4: resources.log_max: only the Docker backend reads it: the kubelet rotates",
        id="log-cap-is-the-kubelets",
    ),
    pytest.param(
        KUBERNETES + "kubernetes: {placeholders: -1}\n",
        "w.yaml:4: kubernetes.placeholders: -1 is neither a count (0 or more) nor auto",
        id="negative-placeholders",
    ),
    pytest.param(
        KUBERNETES + "kubernetes:\n  gpu_tolerations: [{key: nvidia.com/gpu, effect: NoScheduel}]\n",
        "w.yaml:5: kubernetes.gpu_tolerations.0.effect: Input should be 'NoSchedule', 'PreferNoSchedule' or",
        id="misspelt-taint-effect",
    ),
    pytest.param(
        KUBERNETES + "kubernetes: {chart_versoin: 4.4.0}\n",
        "w.yaml:4: kubernetes.chart_versoin: unknown key",
        id="misspelt-key",
    ),
    pytest.param(
        "auth: {mode: shared-code, access_code: x}\nkubernetes: {placeholders: 3}\n",
        "w.yaml:2: kubernetes: only hub.backend kubernetes reads this section",
        id="kubernetes-section-on-docker",
    ),
    pytest.param(
        "auth: {mode: accounts, accounts_file: nowhere.csv}\nhub: {backend: kubernetes}\n",
        "nowhere.csv does not exist on this machine",
        id="accounts-file-missing",
    ),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_each_problem_is_one_message_naming_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    config = tmp_path / "w.yaml"
    config.write_text(text)
    monkeypatch.chdir(tmp_path)  # line numbers name the file as given
    with pytest.raises(ConfigError) as caught:
        render_z2jh(load_settings(Path("w.yaml")))
    assert len(caught.value.problems) == 1, caught.value.problems
    assert message in caught.value.problems[0]


def test_the_command_prints_the_problem_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "workshop.yaml"
    config.write_text(KUBERNETES + "  port: 8443\n")
    result = subprocess.run(
        [sys.executable, "-m", "dlworkshop", "render", "z2jh", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{config}:4: hub.port: only the Docker backend reads it" in result.stderr
    assert "Traceback" not in result.stderr


def test_extra_env_reaches_every_learners_pod() -> None:
    from dlworkshop.kubernetes.mapping import learner_profile
    from dlworkshop.settings import parse_settings

    settings = parse_settings(KUBERNETES + "resources: {extra_env: {HF_HUB_OFFLINE: '1'}}\n")
    assert learner_profile(settings)["kubespawner_override"]["environment"] == {"HF_HUB_OFFLINE": "1"}
    # Left at its default, the shared folder is off on Kubernetes rather than refused; asking for
    # no Docker quota and no shared folder is no problem either.
    assert not settings.mounts_shared_folder
    parse_settings(KUBERNETES + "resources: {disk: null, shared_folder: false, extra_mounts: []}\n")
