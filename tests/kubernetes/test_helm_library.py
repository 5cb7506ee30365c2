"""The Helm checks' own workings (dlworkshop/kubernetes/helm.py), on a small chart written here, so
that every run exercises Helm through helm-python-sdk whether or not the released Z2JH chart is at
hand (test_helm.py runs them on that chart)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlworkshop.errors import ConfigError
from dlworkshop.kubernetes.chart import Chart
from dlworkshop.kubernetes.helm import CHART_ENV, find_chart, helm_check, helm_installed, run_helm

pytestmark = pytest.mark.kubernetes

CHART_YAML = 'apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: ">=1.28.0-0"\nicon: https://example.org/i.svg\n'
SCHEMA = """{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
 "additionalProperties": false,
 "properties": {"greeting": {"type": "string"}, "replicas": {"type": "integer"},
                "extraSpec": {"type": "object"}}}"""
VALUES = "greeting: hello\nreplicas: 1\nextraSpec: {}\n"
TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-probe
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: probe}}
  template:
    metadata: {labels: {app: probe}}
    spec:
      containers:
        - name: probe
          image: "busybox:1.36"
          env: [{name: GREETING, value: {{ .Values.greeting | quote }}}]
      {{- with .Values.extraSpec }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
"""


@pytest.fixture(scope="module")
def probe_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not helm_installed():
        pytest.fail("helm-python-sdk is not installed: pip install 'dlworkshop[kubernetes]'")
    folder = tmp_path_factory.mktemp("charts") / "probe"
    (folder / "templates").mkdir(parents=True)
    (folder / "Chart.yaml").write_text(CHART_YAML)
    (folder / "values.schema.json").write_text(SCHEMA)
    (folder / "values.yaml").write_text(VALUES)
    (folder / "templates" / "deployment.yaml").write_text(TEMPLATE)
    return folder


def test_good_values_lint_clean_and_render_valid_objects(probe_chart: Path) -> None:
    result = run_helm({"greeting": "hi", "replicas": 2}, probe_chart, ["1.28", "1.37"])
    assert result.problems == []
    (deployment,) = result.objects
    assert deployment["metadata"] == {"name": "dlworkshop-probe", "namespace": "workshop"}
    assert deployment["spec"]["replicas"] == 2


def test_a_schema_violation_is_refused_by_lint_and_template_with_its_path(probe_chart: Path) -> None:
    result = run_helm({"replicas": "two"}, probe_chart, ["1.28"])
    assert [line.split(":")[0] for line in result.problems] == [
        "helm lint --strict (Kubernetes 1.28)",
        "helm lint --strict (Kubernetes 1.28)",
        "helm template",
    ]
    assert all("/replicas" in line for line in result.problems)
    assert result.objects == []


def test_an_object_kubernetes_would_refuse_is_named_for_each_version(probe_chart: Path) -> None:
    result = run_helm({"extraSpec": {"hostnme": "x"}}, probe_chart, ["1.28", "1.37"])
    assert result.problems == [
        f"Deployment dlworkshop-probe: spec.template.spec: Additional properties are not allowed "
        f"('hostnme' was unexpected) (Kubernetes {version})"
        for version in ("1.28", "1.37")
    ]


def test_another_chart_than_the_pinned_one_is_refused(probe_chart: Path, chart: Chart) -> None:
    with pytest.raises(ConfigError, match=re.escape("is the chart probe 0.1.0, not jupyterhub 4.4.0")):
        helm_check({}, chart, probe_chart)


def test_the_chart_comes_from_the_option_then_the_environment(
    probe_chart: Path, chart: Chart, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CHART_ENV, str(probe_chart))
    assert find_chart(chart) == probe_chart
    assert find_chart(chart, tmp_path) == tmp_path
    with pytest.raises(ConfigError, match="no chart at"):
        find_chart(chart, tmp_path / "missing.tgz")
