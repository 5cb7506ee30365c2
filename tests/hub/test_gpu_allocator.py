"""GPU quotas: whatever the order of spawns, stops and hub restarts, no device is handed out beyond
its share, and a restart re-derives exactly the same assignments from container labels."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlworkshop.gpus import GpuDevice, parse_nvidia_smi
from dlworkshop.settings import GPU
from hub.backends.gpu_allocator import Allocation, Device, GpuAllocator, GpuPoolExhausted, inventory

NVIDIA_SMI = """\
0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA H100 80GB HBM3, 81559
1, GPU-66666666-7777-8888-9999-000000000000, NVIDIA H100 80GB HBM3, [N/A]
No devices were found
"""


def devices(count: int, memory: int = 40960) -> list[Device]:
    return [Device(f"GPU-{i}", memory) for i in range(count)]


def test_nvidia_smi_output_is_parsed() -> None:
    parsed = parse_nvidia_smi(NVIDIA_SMI)
    assert parsed == [
        GpuDevice(0, "GPU-11111111-2222-3333-4444-555555555555", "NVIDIA H100 80GB HBM3", 81559),
        GpuDevice(1, "GPU-66666666-7777-8888-9999-000000000000", "NVIDIA H100 80GB HBM3", None),
    ]


def test_shared_policy_caps_memory_at_the_learners_share() -> None:
    allocator = GpuAllocator.from_settings(
        GPU(policy="shared", per_learner="1/4"), discovered=devices(2, 40000)
    )
    assert allocator.capacity == 8
    first = allocator.allocate("ada")
    assert first.memory_cap_mb == 10000
    assert first.environment == {
        "NVIDIA_VISIBLE_DEVICES": first.device_ids[0],
        "DLWORKSHOP_GPU_MEMORY_MB": "10000",
    }
    assert allocator.allocate("grace").device_ids != first.device_ids  # spread over both GPUs


def test_whole_policy_gives_k_gpus_and_refuses_when_full() -> None:
    allocator = GpuAllocator.from_settings(GPU(policy="whole", per_learner=2, devices=["0", "1", "2"]))
    assert allocator.allocate("ada").device_ids == ("0", "1")
    with pytest.raises(GpuPoolExhausted, match="All 1 GPU places"):
        allocator.allocate("grace")
    allocator.release("ada")
    assert allocator.allocate("grace").device_ids == ("0", "1")


def test_mig_policy_hands_out_each_slice_once() -> None:
    allocator = GpuAllocator.from_settings(GPU(policy="mig", mig_devices=["MIG-a", "MIG-b"]))
    assert {allocator.allocate("a").device_ids, allocator.allocate("b").device_ids} == {
        ("MIG-a",),
        ("MIG-b",),
    }
    with pytest.raises(GpuPoolExhausted):
        allocator.allocate("c")


def test_the_same_learner_gets_the_same_share_again() -> None:
    allocator = GpuAllocator.from_settings(
        GPU(policy="shared", per_learner=0.5, devices=["0"], memory_mb=16000)
    )
    assert allocator.allocate("ada") is allocator.allocate("ada")
    assert allocator.usage() == {"0": 1}


def test_policy_none_has_no_devices() -> None:
    allocator = GpuAllocator.from_settings(GPU())
    assert not allocator.enabled and allocator.capacity == 0 and inventory(GPU()) == []


def test_labels_and_device_requests() -> None:
    allocation = Allocation("ada", ("GPU-0", "GPU-1"), 8000)
    assert allocation.labels == {
        "org.dlworkshop.gpu.devices": "GPU-0,GPU-1",
        "org.dlworkshop.gpu.memory-cap-mb": "8000",
    }
    assert allocation.device_requests == [
        {"driver": "nvidia", "device_ids": ["GPU-0", "GPU-1"], "capabilities": [["gpu"]]}
    ]


POLICIES = st.sampled_from(
    [
        GPU(policy="whole", per_learner=1, devices=["0", "1", "2", "3"]),
        GPU(policy="whole", per_learner=2, devices=["0", "1", "2", "3", "4"]),
        GPU(policy="shared", per_learner="1/3", devices=["0", "1"], memory_mb=30000),
        GPU(policy="shared", per_learner="1/2", devices=["0", "1", "2"], memory_mb=20000),
        GPU(policy="mig", mig_devices=["MIG-0", "MIG-1", "MIG-2"]),
    ]
)
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["allocate", "release", "restart"]), st.sampled_from([f"u{i}" for i in range(12)])
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(policy=POLICIES, actions=ACTIONS)
def test_no_device_is_ever_handed_out_beyond_its_share(policy: GPU, actions: list[tuple[str, str]]) -> None:
    allocator = GpuAllocator.from_settings(policy)
    for action, user in actions:
        if action == "allocate":
            held = len(allocator.assignments)
            try:
                allocation = allocator.allocate(user)
                assert len(allocation.device_ids) == allocator.gpus_per_learner
            except GpuPoolExhausted:
                assert held == allocator.capacity, "refused while places were free"
        elif action == "release":
            allocator.release(user)
        else:  # the hub restarts: a new allocator rebuilt from the running containers' labels
            before = dict(allocator.assignments)
            allocator = GpuAllocator.from_settings(policy)
            allocator.rebuild((a.username, a.labels) for a in before.values())
            assert allocator.assignments == before
        assert all(count <= allocator.learners_per_gpu for count in allocator.usage().values())
        assert len(allocator.assignments) <= allocator.capacity


def test_rebuild_ignores_devices_that_left_the_inventory_and_overfull_shares() -> None:
    allocator = GpuAllocator.from_settings(GPU(policy="whole", per_learner=1, devices=["0"]))
    allocator.rebuild(
        [
            ("ada", {"org.dlworkshop.gpu.devices": "0"}),
            ("grace", {"org.dlworkshop.gpu.devices": "0"}),
            ("linus", {"org.dlworkshop.gpu.devices": "7"}),
            ("nobody", {}),
        ]
    )
    assert list(allocator.assignments) == ["ada"]
