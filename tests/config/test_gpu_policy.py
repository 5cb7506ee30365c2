"""The GPU policy's arithmetic lives in one place, the GPU settings (dlworkshop/settings/gpu.py):
its properties hold for every policy, and capacity, the Docker allocator, the Slurm job request and
the Kubernetes mapping all answer with it (each is checked against it, and seen to call it)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlworkshop import capacity
from dlworkshop.kubernetes import mapping
from dlworkshop.settings import GPU, Settings, parse_settings
from dlworkshop.slurm import jobs, planning
from hub.backends.gpu_allocator import Device, GpuAllocator

MEMORY = st.none() | st.integers(min_value=256, max_value=200_000)
CAP = st.none() | st.integers(min_value=128, max_value=100_000)


@st.composite
def gpus(draw: st.DrawFn) -> GPU:
    """Any valid GPU section: N whole GPUs, a 1/n share, or MIG slices."""
    policy = draw(st.sampled_from(["none", "whole", "shared", "mig"]))
    per_learner: Any = 1
    if policy == "whole":
        per_learner = draw(st.integers(min_value=1, max_value=8))
    elif policy == "shared":
        per_learner = f"1/{draw(st.integers(min_value=2, max_value=16))}"
    mig_devices = [f"MIG-{i}" for i in range(draw(st.integers(0, 8)))] if policy == "mig" else []
    return GPU(
        policy=policy,
        per_learner=per_learner,
        memory_mb=draw(MEMORY),
        memory_cap_mb=draw(CAP),
        mig_devices=mig_devices,
    )


DEVICES = st.integers(min_value=0, max_value=64)


@given(gpus(), DEVICES)
def test_places_follow_the_policy(gpu: GPU, devices: int) -> None:
    places = gpu.places(devices)
    if gpu.policy == "none":
        assert places is None
        return
    assert places is not None
    if gpu.policy == "whole":
        assert gpu.gpus_per_learner == gpu.per_learner
        assert places * gpu.gpus_per_learner <= devices < (places + 1) * gpu.gpus_per_learner
    elif gpu.policy == "shared":
        assert gpu.gpus_per_learner == 1
        assert abs(gpu.learners_per_gpu * gpu.per_learner - 1) < 1e-9
        assert places == devices * gpu.learners_per_gpu
    else:
        assert places == devices  # one MIG slice each


@given(gpus(), DEVICES, DEVICES)
def test_more_devices_never_carry_fewer_learners(gpu: GPU, some: int, more: int) -> None:
    low, high = sorted((some, more))
    assert (gpu.places(low) or 0) <= (gpu.places(high) or 0)


@given(gpus(), MEMORY)
def test_the_memory_cap_is_the_set_one_else_a_shared_gpus_share(gpu: GPU, gpu_memory: int | None) -> None:
    cap = gpu.learner_memory_mb(gpu_memory)
    if gpu.memory_cap_mb is not None:
        assert cap == gpu.memory_cap_mb
    elif gpu.policy == "shared" and gpu_memory:
        assert cap is not None
        assert cap * gpu.learners_per_gpu <= gpu_memory < (cap + 1) * gpu.learners_per_gpu
    else:
        assert cap is None


@given(st.integers(min_value=2, max_value=16), st.integers(min_value=1, max_value=8))
def test_a_shared_gpus_shares_split_evenly(learners: int, each: int) -> None:
    gpu = GPU(policy="shared", per_learner=f"1/{learners}")
    assert gpu.shares_per_learner(learners * each) == each
    assert gpu.shares_per_learner(None) == 1


def settings_with(gpu: GPU) -> Settings:
    """Docker settings holding this GPU section (the mapping functions read only what they need)."""
    base = parse_settings("auth: {mode: shared-code, access_code: x}\nimage: {variant: cuda}\n")
    kubernetes = base.kubernetes.model_copy(update={"mig_profile": "1g.10gb"})
    slurm = base.slurm.model_copy(update={"mig_profile": "1g.10gb"})
    resources = base.resources.model_copy(update={"gpu": gpu})
    return base.model_copy(update={"resources": resources, "kubernetes": kubernetes, "slurm": slurm})


@given(gpus(), DEVICES)
def test_every_engine_answers_with_the_policys_arithmetic(gpu: GPU, devices: int) -> None:
    settings = settings_with(gpu)
    host = capacity.HostFacts(cpus=64, memory=2**40, gpus=devices)
    on_host = len(gpu.mig_devices) if gpu.policy == "mig" else devices
    assert capacity.gpu_places(settings, host) == gpu.places(on_host)
    assert planning._gpu_places(settings, devices) == gpu.places(devices)

    allocator = GpuAllocator.from_settings(gpu, [Device(f"GPU-{i}", gpu.memory_mb) for i in range(devices)])
    assert allocator.capacity == (gpu.places(on_host) or 0)
    assert (allocator.gpus_per_learner, allocator.learners_per_gpu) == (
        gpu.gpus_per_learner,
        gpu.learners_per_gpu,
    )
    assert allocator.memory_cap_mb == gpu.learner_memory_mb(gpu.memory_mb if devices else None)

    assert mapping.gpu_memory_cap_mb(gpu) == gpu.learner_memory_mb(gpu.memory_mb)
    assert jobs.gpu_memory_cap_mb(settings) == gpu.learner_memory_mb(gpu.memory_mb)
    limits = mapping.gpu_limits(settings)
    gres = jobs.gres(settings)
    if gpu.policy == "none":
        assert limits == {} and gres is None
    else:
        assert list(limits.values()) == [gpu.gpus_per_learner]
        assert gres is not None
        count = gpu.shares_per_learner(None) if gpu.policy == "shared" else gpu.gpus_per_learner
        assert gres.endswith(f":{count}")


@pytest.mark.parametrize("policy", ["whole", "shared", "mig"])
def test_the_engines_ask_the_gpu_settings(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    """Changing the one rule changes every engine: none keeps a copy of its own."""
    per_learner = {"whole": 1, "shared": "1/2", "mig": 1}[policy]
    gpu = GPU(policy=policy, per_learner=per_learner, memory_mb=40000, mig_devices=["MIG-0"])
    settings = settings_with(gpu)
    monkeypatch.setattr(GPU, "places", lambda self, devices: 4242)
    monkeypatch.setattr(GPU, "gpus_per_learner", property(lambda self: 7))
    monkeypatch.setattr(GPU, "learner_memory_mb", lambda self, memory: 777)
    monkeypatch.setattr(GPU, "shares_per_learner", lambda self, shares: 5)

    assert capacity.gpu_places(settings, capacity.HostFacts(cpus=1, memory=2**30, gpus=1)) == 4242
    assert planning._gpu_places(settings, 1) == 4242
    allocator = GpuAllocator.from_settings(gpu, [Device("GPU-0", 40000)])
    assert (allocator.capacity, allocator.gpus_per_learner, allocator.memory_cap_mb) == (4242, 7, 777)
    assert list(mapping.gpu_limits(settings).values()) == [7]
    assert mapping.gpu_memory_cap_mb(gpu) == jobs.gpu_memory_cap_mb(settings) == 777
    assert jobs.gres(settings) == {"whole": "gpu:7", "shared": "shard:5", "mig": "gpu:1g.10gb:7"}[policy]
