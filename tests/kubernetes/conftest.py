"""Fixtures of the Kubernetes checks: each example workshop rendered once per run, its values and
the pods KubeSpawner builds from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dlworkshop.kubernetes.chart import Chart, load_chart
from dlworkshop.kubernetes.manifests import LearnerPod, learner_pods
from dlworkshop.kubernetes.values import render_z2jh
from dlworkshop.settings import Settings, load_settings
from tests.conftest import REPO

EXAMPLES = sorted((REPO / "examples" / "kubernetes").glob("*.yaml"))


@dataclass(frozen=True)
class RenderedExample:
    path: Path
    settings: Settings
    values: dict[str, Any]
    pods: list[LearnerPod]


@pytest.fixture(scope="session")
def chart() -> Chart:
    return load_chart(Settings.model_fields["kubernetes"].default.chart_version)


@pytest.fixture(scope="session")
def rendered_examples(chart: Chart) -> dict[str, RenderedExample]:
    examples = {}
    for path in EXAMPLES:
        settings = load_settings(path)
        values = render_z2jh(settings).values
        examples[path.name] = RenderedExample(path, settings, values, learner_pods(values, chart))
    return examples


@pytest.fixture(params=[path.name for path in EXAMPLES])
def example(request: pytest.FixtureRequest, rendered_examples: dict[str, RenderedExample]) -> RenderedExample:
    return rendered_examples[request.param]
