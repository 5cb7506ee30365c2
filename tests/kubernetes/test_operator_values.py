"""An operator's own hub.services, hub.loadRoles and hub.extraConfig, in a values file of theirs
given after ours (`helm -f values.yaml -f theirs.yaml`), survive the workshop's hub configuration
under the chart's own hub configuration (the stand-in of tests/kubernetes/chart_hub, run in the
test venv): their service keeps the token the chart made for it and its role, their extraConfig
runs after ours and wins, and the workshop's own services are there beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlworkshop import contract
from dlworkshop.kubernetes.chart import Chart, merge_values
from dlworkshop.kubernetes.values import EXTRA_CONFIG_KEY
from tests.kubernetes.chart_hub import PREWARM_TOKEN, hub_pod, run_on_host
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes

THEIRS: dict[str, Any] = {
    "hub": {
        "services": {"grafana": {"url": "http://grafana.monitoring:3000"}},
        "loadRoles": {
            "grafana": {"scopes": ["read:metrics"], "services": ["grafana"]},
            # Their own member of one of our roles: added, ours kept.
            contract.ROOM_ROLE: {"users": ["site-operator"]},
        },
        "extraConfig": {
            "site-banner": "c.JupyterHub.template_vars.update({'banner': 'the site', 'workshop_name': 'theirs'})\n"
        },
    }
}


def test_the_operators_services_roles_and_extra_config_survive_ours(
    rendered_examples: dict[str, RenderedExample], chart: Chart, tmp_path: Path
) -> None:
    ours = rendered_examples["cpu.yaml"]
    values = merge_values(ours.values, THEIRS)  # Helm's merge of the two files
    # Both extraConfig entries, ours first in the chart's (sorted) order.
    assert sorted(values["hub"]["extraConfig"]) == [EXTRA_CONFIG_KEY, "site-banner"]
    report = run_on_host(hub_pod(values, chart, tmp_path / "chart"), tmp_path / "srv-jupyterhub")
    hub = report["jupyterhub"]
    services = {service["name"]: service for service in hub["services"]}
    assert services["grafana"]["url"] == "http://grafana.monitoring:3000"
    assert services["grafana"]["api_token"]  # the token the chart keeps for it
    assert services[contract.PREWARM_SERVICE]["api_token"] == PREWARM_TOKEN
    assert contract.CULLER_SERVICE in services
    roles = {role["name"]: role for role in hub["load_roles"]}
    assert len(roles) == len(hub["load_roles"])  # JupyterHub refuses a role defined twice
    assert roles["grafana"] == {"name": "grafana", "scopes": ["read:metrics"], "services": ["grafana"]}
    admins = sorted(ours.settings.auth.admins)
    assert roles[contract.ROOM_ROLE]["users"] == [*admins, "site-operator"]
    assert roles[contract.ROOM_ROLE]["scopes"] == [contract.ROOM_SCOPE]
    assert {contract.CULLER_SERVICE, contract.PREWARM_SERVICE} <= set(roles)
    # Their extraConfig ran after ours: what it sets wins over ours.
    assert hub["template_vars"] == {"workshop_name": "theirs", "banner": "the site"}
