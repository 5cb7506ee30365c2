"""scripts/gpu-check's rules with fake `nvidia-smi` output (no GPU, no Docker): which checks a
machine's GPUs allow and why others are not checked, the settings of each hub, what counts as a
pass; and its --dry-run here, without a GPU and with a fake one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from dlworkshop.clients.gpu_check import plan
from dlworkshop.settings import load_settings
from tests.conftest import REPO

ONE_T4 = "0, GPU-aaaa, Tesla T4, 15360, 550.54.15, [N/A]\n"
TWO_A100 = (
    "0, GPU-a100-0, NVIDIA A100-SXM4-40GB, 40960, 550.54.15, Disabled\n"
    "1, GPU-a100-1, NVIDIA A100-SXM4-40GB, 40960, 550.54.15, Disabled\n"
)
MIG_ON = "0, GPU-h100, NVIDIA H100 80GB HBM3, 81559, 560.35.03, Enabled\n"


def test_nvidia_smi_lines_become_gpus_and_other_lines_are_ignored() -> None:
    gpus = plan.parse_gpus("No devices were found\nWARNING: something\n" + TWO_A100)
    assert [(g.index, g.uuid, g.memory_mb, g.driver, g.mig_capable) for g in gpus] == [
        (0, "GPU-a100-0", 40960, "550.54.15", True),
        (1, "GPU-a100-1", 40960, "550.54.15", True),
    ]
    assert plan.parse_gpus("0, GPU-x, vGPU, [N/A], 535.1, [N/A]")[0].memory_mb is None
    assert plan.parse_gpus("") == []


def test_one_gpu_without_mig_checks_shared_and_whole_and_says_what_it_cannot() -> None:
    checks = plan.plan_checks(plan.parse_gpus(ONE_T4))
    shared, whole = checks.scenarios
    assert (shared.policy, shared.devices, shared.learners, shared.capped) == (
        "shared",
        ("GPU-aaaa",),
        plan.LEARNERS,
        True,
    )
    assert shared.expected_devices() == {"gpucheck-a": ("GPU-aaaa",), "gpucheck-b": ("GPU-aaaa",)}
    assert (whole.policy, whole.learners, whole.capped) == ("whole", ("gpucheck-a",), False)
    reasons = {item.what.split(":")[0]: item.why for item in checks.not_checked}
    assert reasons["whole"].startswith("one GPU only (Tesla T4)")
    assert "no MIG-capable GPU" in reasons["mig"]


def test_two_gpus_give_each_whole_learner_its_own() -> None:
    checks = plan.plan_checks(plan.parse_gpus(TWO_A100))
    whole = checks.scenarios[1]
    assert whole.expected_devices() == {"gpucheck-a": ("GPU-a100-0",), "gpucheck-b": ("GPU-a100-1",)}
    reasons = {item.what.split(":")[0]: item.why for item in checks.not_checked}
    assert set(reasons) == {"mig"} and "MIG mode is off" in reasons["mig"]
    assert "not automated" in plan.plan_checks(plan.parse_gpus(MIG_ON)).not_checked[-1].why


def test_no_gpu_plans_nothing_and_says_so() -> None:
    checks = plan.plan_checks([])
    assert checks.scenarios == []
    assert [item.why for item in checks.not_checked] == [plan.NO_GPU_MESSAGE]


@pytest.mark.parametrize("nvidia_smi", [ONE_T4, TWO_A100], ids=["one-T4", "two-A100"])
def test_each_scenarios_workshop_yaml_is_valid_and_asks_for_its_policy(
    nvidia_smi: str, tmp_path: Path
) -> None:
    """The settings model accepts each hub's workshop.yaml, and the hub's allocator then gives
    what the check expects: a shared learner half the GPU's memory as cap, a whole one no cap."""
    from hub.backends.gpu_allocator import GpuAllocator

    for scenario in plan.plan_checks(plan.parse_gpus(nvidia_smi)).scenarios:
        config = tmp_path / f"{scenario.policy}.yaml"
        image = {"name": "dlworkshop/learner", "tag": "gpu-check"}
        config.write_text(yaml.safe_dump(plan.workshop_yaml(scenario, image, "code", 8780, "gpuc")))
        gpu = load_settings(config).resources.gpu
        assert gpu.policy == scenario.policy and gpu.devices == list(scenario.devices)
        allocator = GpuAllocator.from_settings(gpu)
        gpu_memory = plan.parse_gpus(nvidia_smi)[0].memory_mb
        assert allocator.memory_cap_mb == (gpu_memory // 2 if scenario.capped else None)  # type: ignore[operator]
        assert allocator.capacity == len(scenario.learners)
        assert load_settings(config).image.variant == "cuda"
        if scenario.policy == "shared":
            assert gpu.learners_per_gpu == len(scenario.learners) == 2


SHARED = plan.plan_checks(plan.parse_gpus(ONE_T4)).scenarios[0]
WHOLE_TWO = plan.plan_checks(plan.parse_gpus(TWO_A100)).scenarios[1]


def test_visibility_passes_only_when_each_learner_sees_exactly_its_gpus() -> None:
    assert plan.visibility_verdict(SHARED, {"gpucheck-a": ["GPU-aaaa"], "gpucheck-b": ["GPU-aaaa"]}).passed
    assert not plan.visibility_verdict(SHARED, {"gpucheck-a": ["GPU-aaaa"], "gpucheck-b": []}).passed
    both = {"gpucheck-a": ["GPU-a100-0"], "gpucheck-b": ["GPU-a100-1"]}
    assert plan.visibility_verdict(WHOLE_TWO, both).passed
    sees_all = {"gpucheck-a": ["GPU-a100-0", "GPU-a100-1"], "gpucheck-b": ["GPU-a100-1"]}
    verdict = plan.visibility_verdict(WHOLE_TWO, sees_all)
    assert not verdict.passed and "gpucheck-a: GPU-a100-0, GPU-a100-1" in verdict.measured


def test_the_cap_verdict_wants_the_share_as_limit_or_no_limit_on_a_whole_gpu() -> None:
    cap = 7680
    assert plan.cap_verdict(SHARED, cap, {"gpucheck-a": {"gpus": 1, "limits_mb": [cap]}}).passed
    assert not plan.cap_verdict(SHARED, cap, {"gpucheck-a": {"gpus": 1, "limits_mb": [2 * cap]}}).passed
    assert not plan.cap_verdict(SHARED, cap, {"gpucheck-a": {"gpus": 1, "limits_mb": []}}).passed
    assert not plan.cap_verdict(SHARED, cap, {"gpucheck-a": {"gpus": 0, "limits_mb": []}}).passed
    assert not plan.cap_verdict(SHARED, None, {"gpucheck-a": {"gpus": 1, "limits_mb": []}}).passed
    assert plan.cap_verdict(WHOLE_TWO, None, {"gpucheck-a": {"gpus": 1, "limits_mb": []}}).passed
    assert not plan.cap_verdict(WHOLE_TWO, None, {"gpucheck-a": {"gpus": 1, "limits_mb": [4096]}}).passed
    assert not plan.cap_verdict(WHOLE_TWO, None, {}).passed


def test_the_hubs_cap_is_the_one_every_learners_container_was_given() -> None:
    assert plan.hub_cap_mb({"a": {"cap_env": "7680"}, "b": {"cap_env": "7680"}}) == 7680
    assert plan.hub_cap_mb({"a": {"cap_env": "7680"}, "b": {"cap_env": "4096"}}) is None
    assert plan.hub_cap_mb({"a": {"cap_env": None}}) is None
    assert plan.hub_cap_mb({}) is None


def test_the_cap_holds_only_if_past_it_is_refused_and_the_neighbour_still_allocates() -> None:
    assert plan.allocation_sizes_mb(8000) == (4800, 10000)
    assert plan.cap_holds_verdict(SHARED, "ResourceExhaustedError", "ok").passed
    assert not plan.cap_holds_verdict(SHARED, "", "ok").passed  # past the cap was allowed
    assert not plan.cap_holds_verdict(SHARED, "ResourceExhaustedError", "ResourceExhaustedError").passed


def smoke_report(budget: str = "180 s (gpu, full)", passed: bool = True) -> dict:  # type: ignore[type-arg]
    checks = [
        {"check": "GPU visible with its memory cap", "passed": True, "measured": "1 GPU(s)", "budget": ""}
    ]
    checks += [
        {"check": f"episode {e}", "passed": passed, "measured": "90.0 s", "budget": budget}
        for e in plan.GPU_EPISODES
    ]
    return {"checks": checks}


def test_episodes_pass_only_within_a_gpu_budget_with_the_smoke_tests_gpu_check() -> None:
    assert all(v.passed for v in plan.smoke_verdicts(SHARED, smoke_report()))
    # Run on the CPU (the smoke test measured against the cpu budget): not the GPU's pass.
    on_cpu = plan.smoke_verdicts(SHARED, smoke_report(budget="600 s (cpu, full)"))
    assert [v.passed for v in on_cpu] == [True, False, False]
    assert [v.passed for v in plan.smoke_verdicts(SHARED, smoke_report(passed=False))] == [True, False, False]
    assert not any(v.passed for v in plan.smoke_verdicts(SHARED, {}))


def gpu_check(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "gpu-check"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        timeout=120,
    )


def test_the_dry_run_without_a_gpu_prints_every_step_and_says_no_gpu_here() -> None:
    result = gpu_check("--dry-run", path="/usr/bin:/bin")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {plan.NO_GPU_MESSAGE}"
    for step in ("[shared] dlworkshop up", "[whole] dlworkshop up", "ResourceExhaustedError", "smoke-test"):
        assert step in result.stdout, result.stdout
    assert "benchmarks/results/gpu-check-" in result.stdout


def test_the_dry_run_with_a_gpu_names_its_devices_and_what_it_cannot_check(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\nprintf '{ONE_T4}'\n")
    fake.chmod(0o755)
    result = gpu_check("--dry-run", "--archive", "cuda.tar", path=f"{tmp_path}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert "GPU 0: Tesla T4, 15360 MB, driver 550.54.15, MIG [N/A]" in result.stdout
    assert "load the CUDA learner image" in result.stdout
    assert "devices GPU-aaaa, each learner's memory cap the hub's default" in result.stdout
    assert "not checked: whole: two learners" in result.stdout and "no MIG-capable GPU" in result.stdout
