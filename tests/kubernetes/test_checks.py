"""Check (d), the project's own, on values edited the ways hand-written values go wrong; and proof
that the chart's schema (a) and Kubernetes' OpenAPI schema (c) let those through but are not blind."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dlworkshop.kubernetes.chart import Chart, schema_problems
from dlworkshop.kubernetes.checks import values_problems
from dlworkshop.kubernetes.manifests import learner_pods, openapi_problems
from tests.kubernetes.conftest import RenderedExample

pytestmark = pytest.mark.kubernetes


@pytest.fixture
def whole_gpu(rendered_examples: dict[str, RenderedExample]) -> dict[str, Any]:
    return copy.deepcopy(rendered_examples["gpu-whole.yaml"].values)


def override(values: dict[str, Any]) -> dict[str, Any]:
    return values["singleuser"]["profileList"][0]["kubespawner_override"]


def test_a_typo_inside_a_profile_passes_the_charts_schema_and_breaks_every_start(
    whole_gpu: dict[str, Any], chart: Chart
) -> None:
    override(whole_gpu)["extra_resource_limit"] = override(whole_gpu).pop("extra_resource_limits")
    assert schema_problems(whole_gpu, chart) == []
    # Found only when KubeSpawner applies the profile: as each learner's server starts.
    with pytest.raises(AttributeError, match="extra_resource_limit"):
        learner_pods(whole_gpu, chart)
    assert values_problems(whole_gpu) == [
        "singleuser.profileList[0].kubespawner_override.extra_resource_limit: KubeSpawner has no "
        "option 'extra_resource_limit'; did you mean extra_resource_limits?"
    ]


def test_a_typo_inside_a_profile_can_pass_both_schemas_silently(
    whole_gpu: dict[str, Any], chart: Chart
) -> None:
    override(whole_gpu)["mem_limt"] = "64G"
    assert schema_problems(whole_gpu, chart) == []
    # KubeSpawner sets the misspelt key as a plain attribute: the pod keeps the old limit.
    (pod,) = learner_pods(whole_gpu, chart)
    assert openapi_problems(pod.pod, "1.28") == []
    assert pod.pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == 16 * 1024**3
    assert values_problems(whole_gpu) == [
        "singleuser.profileList[0].kubespawner_override.mem_limt: KubeSpawner has no option 'mem_limt'; "
        "did you mean mem_limit?"
    ]


def test_a_wrong_gpu_resource_name_passes_both_schemas_but_not_the_projects_check(
    whole_gpu: dict[str, Any], chart: Chart
) -> None:
    for resources in (
        override(whole_gpu)["extra_resource_limits"],
        override(whole_gpu)["extra_resource_guarantees"],
    ):
        resources["nvidia.com/gpus"] = resources.pop("nvidia.com/gpu")
    for amounts in whole_gpu["scheduling"]["userPlaceholder"]["resources"].values():
        amounts["nvidia.com/gpus"] = amounts.pop("nvidia.com/gpu")
    assert schema_problems(whole_gpu, chart) == []
    (pod,) = learner_pods(whole_gpu, chart)
    assert pod.pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpus"] == "1"
    assert openapi_problems(pod.pod, "1.28") == [] and openapi_problems(pod.pod, "1.37") == []
    problems = values_problems(whole_gpu)
    assert len(problems) == 4
    assert problems[0] == (
        "singleuser.profileList[0].kubespawner_override.extra_resource_limits.nvidia.com/gpus: no node "
        "advertises this resource (NVIDIA's device plugin offers nvidia.com/gpu, nvidia.com/gpu.shared and "
        "nvidia.com/mig-<profile>); the pod would stay Pending"
    )
    assert all("nvidia.com/gpus: no node advertises this resource" in problem for problem in problems)


def test_a_typo_in_a_profile_option_choice_is_caught(whole_gpu: dict[str, Any]) -> None:
    whole_gpu["singleuser"]["profileList"][0]["profile_options"] = {
        "image": {
            "display_name": "Image",
            "choices": {"new": {"display_name": "New", "kubespawner_override": {"imgae": "x"}}},
        }
    }
    assert values_problems(whole_gpu) == [
        "singleuser.profileList[0].profile_options.image.choices.new.kubespawner_override.imgae: KubeSpawner "
        "has no option 'imgae'; did you mean image?"
    ]


def test_placeholders_without_the_gpu_are_caught(whole_gpu: dict[str, Any], chart: Chart) -> None:
    for amounts in whole_gpu["scheduling"]["userPlaceholder"]["resources"].values():
        del amounts["nvidia.com/gpu"]
    assert schema_problems(whole_gpu, chart) == []
    assert values_problems(whole_gpu) == [
        "scheduling.userPlaceholder.resources.requests.nvidia.com/gpu: a learner's pod asks for 1, a "
        "placeholder for none; placeholders would hold room on the wrong nodes"
    ]


def test_a_gpu_toleration_only_the_profile_has_is_caught(whole_gpu: dict[str, Any]) -> None:
    override(whole_gpu)["tolerations"] = whole_gpu["singleuser"].pop("extraTolerations")
    (problem,) = values_problems(whole_gpu)
    assert "the image pullers do not" in problem and "nvidia.com/gpu" in problem


def test_a_misspelt_kubespawner_option_in_hub_config_is_caught(whole_gpu: dict[str, Any]) -> None:
    whole_gpu["hub"]["config"]["KubeSpawner"]["container_security_contxt"] = {}
    (problem,) = values_problems(whole_gpu)
    assert problem.startswith("hub.config.KubeSpawner.container_security_contxt: KubeSpawner has no option")


def test_the_charts_schema_is_not_blind(whole_gpu: dict[str, Any], chart: Chart) -> None:
    whole_gpu["singleuser"]["memroy"] = whole_gpu["singleuser"].pop("memory")
    whole_gpu["singleuser"]["cpu"]["limit"] = "2"
    assert schema_problems(whole_gpu, chart) == [
        "singleuser: Additional properties are not allowed ('memroy' was unexpected)",
        "singleuser.cpu.limit: '2' is not of type 'number', 'null'",
    ]


def test_the_openapi_check_is_not_blind(rendered_examples: dict[str, RenderedExample]) -> None:
    pod = copy.deepcopy(rendered_examples["cpu.yaml"].pods[0].pod)
    pod["spec"]["containers"][0]["securityContext"]["runAsUsr"] = 1000
    (problem,) = openapi_problems(pod, "1.28")
    assert problem.startswith("Pod jupyter-learner-01: spec.containers[0].securityContext:")
    assert "runAsUsr" in problem and "(Kubernetes 1.28)" in problem


def test_a_misspelt_hub_option_in_hub_config_is_named_with_the_nearest_option(
    whole_gpu: dict[str, Any], chart: Chart
) -> None:
    whole_gpu["hub"]["config"]["JupyterHub"] = {"concurent_spawn_limit": 10, "admin_access": True}
    whole_gpu["hub"]["config"]["Authenticator"] = {"allowed_user": ["ada"]}
    # The chart's schema lets any section and key through hub.config.
    assert schema_problems(whole_gpu, chart) == []
    assert values_problems(whole_gpu) == [
        "hub.config.JupyterHub.concurent_spawn_limit: JupyterHub has no option 'concurent_spawn_limit'; "
        "did you mean concurrent_spawn_limit?",
        "hub.config.Authenticator.allowed_user: Authenticator has no option 'allowed_user'; "
        "did you mean allowed_users?",
    ]
