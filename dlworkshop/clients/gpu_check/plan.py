"""The GPU check's logic, apart from any GPU, Docker or hub: what this machine's GPUs allow checking,
the workshop settings of each scenario, what counts as a pass, and every step the check takes.

Pure functions on `nvidia-smi` output and on what the learners' kernels report (dlworkshop.clients.gpu_check
.run feeds them), so the rules are unit-tested with fake `nvidia-smi` output on a machine without a
GPU. Standard library only: `scripts/gpu-check --dry-run` runs before anything is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One line per GPU: what the results file records of each, and whether it can be split (MIG).
NVIDIA_SMI_QUERY = (
    "nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total,driver_version,mig.mode.current",
    "--format=csv,noheader,nounits",
)
NO_GPU_MESSAGE = (
    "no NVIDIA GPU here (nvidia-smi is missing or lists no GPU): run scripts/gpu-check on a machine "
    "with NVIDIA GPUs, their driver and the NVIDIA container toolkit"
)
# The episodes whose training a GPU is for, and the size they run at (the lesson's own).
GPU_EPISODES = ("04-dollar-street", "05-transfer-learning")
EPISODE_SIZE = "full"
# Of a learner's cap: what each learner holds while the other allocates (both must fit), and what
# one learner then asks for beyond its cap (TensorFlow must refuse it).
HOLD_FRACTION = 0.6
PAST_CAP_FRACTION = 1.25
# The learners two at a time: two share one GPU (shared), or get one each (whole).
LEARNERS = ("gpucheck-a", "gpucheck-b")


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_mb: int | None
    driver: str
    mig_mode: str  # Enabled, Disabled, or [N/A] on a GPU that has no MIG

    @property
    def mig_capable(self) -> bool:
        return self.mig_mode in ("Enabled", "Disabled")


def parse_gpus(output: str) -> list[Gpu]:
    """GPUs from NVIDIA_SMI_QUERY's output; lines that are not a GPU ("No devices were found",
    warnings) are ignored."""
    gpus = []
    for line in (output or "").splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) != 6 or not fields[0].isdigit():
            continue
        index, uuid, name, memory, driver, mig = fields
        try:
            memory_mb: int | None = int(float(memory))
        except ValueError:
            memory_mb = None
        gpus.append(Gpu(int(index), uuid, name, memory_mb, driver, mig))
    return gpus


@dataclass(frozen=True)
class Scenario:
    """One hub the check starts: its GPU policy, the devices it hands out, and what each learner
    must then see."""

    policy: str
    devices: tuple[str, ...]
    learners: tuple[str, ...]
    per_learner: str
    memory_mb: int | None  # of one GPU, as nvidia-smi says it

    @property
    def capped(self) -> bool:
        """Whether the hub caps each learner's GPU memory (the share of a shared GPU: the cap is the
        hub's own default, which the check reads from the learners' containers, never works out)."""
        return self.policy == "shared"

    def gpu_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "policy": self.policy,
            "per_learner": self.per_learner,
            "devices": list(self.devices),
        }
        if self.memory_mb is not None:
            settings["memory_mb"] = self.memory_mb
        return settings

    def expected_devices(self) -> dict[str, tuple[str, ...]]:
        """The GPUs each learner's container must see: the one shared GPU for both, or one each."""
        if self.policy == "shared":
            return {learner: self.devices for learner in self.learners}
        return {learner: (device,) for learner, device in zip(self.learners, self.devices, strict=False)}


@dataclass(frozen=True)
class NotChecked:
    what: str
    why: str


@dataclass
class Plan:
    gpus: list[Gpu]
    scenarios: list[Scenario] = field(default_factory=list)
    not_checked: list[NotChecked] = field(default_factory=list)


def plan_checks(gpus: list[Gpu]) -> Plan:
    """What these GPUs allow: `shared` (two learners on the first GPU, each with its memory cap),
    then `whole` (one GPU each, for as many learners as there are GPUs, two at most), and what
    cannot be checked here and why."""
    plan = Plan(gpus)
    if not gpus:
        plan.not_checked.append(NotChecked("every GPU check", NO_GPU_MESSAGE))
        return plan
    first = gpus[0]
    plan.scenarios.append(Scenario("shared", (first.uuid,), LEARNERS, "1/2", first.memory_mb))
    whole_gpus = gpus[: len(LEARNERS)]
    plan.scenarios.append(
        Scenario(
            "whole",
            tuple(g.uuid for g in whole_gpus),
            LEARNERS[: len(whole_gpus)],
            "1",
            min((g.memory_mb for g in whole_gpus if g.memory_mb), default=None),
        )
    )
    if len(gpus) < 2:
        plan.not_checked.append(
            NotChecked(
                "whole: two learners each on their own GPU, neither seeing the other's",
                f"one GPU only ({first.name}): whole is checked with one learner",
            )
        )
    if not any(gpu.mig_capable for gpu in gpus):
        plan.not_checked.append(
            NotChecked("mig: learners on MIG slices", "no MIG-capable GPU here (nvidia-smi: MIG mode [N/A])")
        )
    elif not any(gpu.mig_mode == "Enabled" for gpu in gpus):
        plan.not_checked.append(
            NotChecked(
                "mig: learners on MIG slices",
                "MIG mode is off on every GPU (nvidia-smi -mig 1 and slices made by an admin turn it on)",
            )
        )
    else:
        plan.not_checked.append(
            NotChecked("mig: learners on MIG slices", "not automated: the slices are a site's own layout")
        )
    return plan


def workshop_yaml(
    scenario: Scenario,
    image: dict[str, Any],
    access_code: str,
    port: int,
    prefix: str,
) -> dict[str, Any]:
    """The workshop.yaml of one scenario's hub, as a mapping (the caller writes it as YAML)."""
    return {
        "workshop": {"name": f"dlworkshop GPU check ({scenario.policy})"},
        "learners": {"count": 4, "expected_concurrent": len(scenario.learners) + 1},
        "auth": {"mode": "shared-code", "access_code": access_code},
        "image": {**image, "variant": "cuda"},
        "resources": {"cpu": 2, "memory": "6G", "gpu": scenario.gpu_settings()},
        "hub": {
            "port": port,
            "container_name": f"{prefix}-hub-{scenario.policy}",
            "network": f"{prefix}-{scenario.policy}",
            "data_volume": f"{prefix}-{scenario.policy}-hub-data",
        },
    }


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    measured: str
    expected: str = ""


def visibility_verdict(scenario: Scenario, seen: dict[str, list[str]]) -> Verdict:
    """Each learner's container sees exactly the GPUs the policy gives it (by UUID)."""
    expected = scenario.expected_devices()
    passed = all(sorted(seen.get(learner, [])) == sorted(devices) for learner, devices in expected.items())
    return Verdict(
        f"{scenario.policy}: each learner sees only its GPUs",
        passed,
        "; ".join(f"{learner}: {', '.join(seen.get(learner, [])) or 'none'}" for learner in expected),
        "; ".join(f"{learner}: {', '.join(devices)}" for learner, devices in expected.items()),
    )


def hub_cap_mb(probes: dict[str, dict[str, Any]]) -> int | None:
    """The cap the hub gave the learners (DLWORKSHOP_GPU_MEMORY_MB in each container, `cap_env`):
    one value for all, else None (none given, or learners given different caps)."""
    caps = {probe.get("cap_env") for probe in probes.values()}
    if len(caps) != 1:
        return None
    (cap,) = caps
    return int(cap) if cap and str(cap).isdigit() else None


def cap_verdict(scenario: Scenario, cap: int | None, probes: dict[str, dict[str, Any]]) -> Verdict:
    """Each learner's TensorFlow sees a GPU and holds `cap`, the hub's cap, as its memory limit
    (shared), or has no limit, its memory growing on demand over the whole GPU (whole). `probes`:
    per learner, the GPUs TensorFlow lists (`gpus`) and the memory limits set on them (`limits_mb`)."""
    if scenario.capped and cap is None:
        return Verdict(
            f"{scenario.policy}: TensorFlow's GPU memory limit", False, "the hub set no cap", "a cap"
        )

    def holds(probe: dict[str, Any]) -> bool:
        limits = probe.get("limits_mb", [])
        if not probe.get("gpus"):
            return False
        if cap is None:
            return limits == []
        return len(limits) == probe["gpus"] and all(abs(limit - cap) <= 1 for limit in limits)

    return Verdict(
        f"{scenario.policy}: TensorFlow's GPU memory limit",
        bool(probes) and all(holds(probe) for probe in probes.values()),
        "; ".join(
            f"{learner}: {p.get('gpus', 0)} GPU(s), limit {p.get('limits_mb') or 'none'}"
            for learner, p in probes.items()
        ),
        f"{cap} MB each" if cap is not None else "no limit: memory grows over the whole GPU",
    )


def allocation_sizes_mb(cap_mb: int) -> tuple[int, int]:
    """(held within the cap, asked beyond it), in MB."""
    return int(cap_mb * HOLD_FRACTION), int(cap_mb * PAST_CAP_FRACTION)


def cap_holds_verdict(scenario: Scenario, over_cap: str, neighbour: str) -> Verdict:
    """`over_cap`: what the first learner's allocation past its cap raised (the exception's name, or
    "" when it succeeded); `neighbour`: the second learner's allocation within its cap, made while
    the first holds its share ("ok", or the exception's name)."""
    passed = over_cap == "ResourceExhaustedError" and neighbour == "ok"
    return Verdict(
        f"{scenario.policy}: the memory cap holds, the neighbour keeps its share",
        passed,
        f"past the cap: {over_cap or 'allowed'}; neighbour within its cap: {neighbour}",
        "past the cap: ResourceExhaustedError; neighbour within its cap: ok",
    )


def smoke_verdicts(scenario: Scenario, report: dict[str, Any]) -> list[Verdict]:
    """From `dlworkshop smoke-test`'s report.json: its GPU check and each GPU episode in its budget
    (on the GPU: the report's budget must say gpu)."""
    checks = {check["check"]: check for check in report.get("checks", [])}
    verdicts = []
    gpu = checks.get("GPU visible with its memory cap")
    verdicts.append(
        Verdict(
            f"{scenario.policy}: the smoke test's GPU check",
            bool(gpu and gpu["passed"]),
            gpu["measured"] if gpu else "not in the report",
            gpu["budget"] if gpu else "",
        )
    )
    for episode in GPU_EPISODES:
        found = checks.get(f"episode {episode}")
        on_gpu = bool(found) and "(gpu," in str(found.get("budget", "")) if found else False
        verdicts.append(
            Verdict(
                f"{scenario.policy}: episode {episode} within its GPU budget",
                bool(found and found["passed"] and on_gpu),
                found["measured"] if found else "not run",
                found["budget"] if found else f"the lesson's gpu budget ({EPISODE_SIZE})",
            )
        )
    return verdicts


def steps(plan: Plan, image: str, build: bool) -> list[str]:
    """Every step the check takes, in order, for `--dry-run` (without a GPU: the steps for the
    usual machine, one GPU or more)."""
    scenarios = (
        plan.scenarios
        or plan_checks([Gpu(0, "GPU-<uuid of GPU 0>", "<GPU 0>", None, "<driver>", "[N/A]")]).scenarios
    )
    lines = ["ask nvidia-smi for the GPUs: " + " ".join(NVIDIA_SMI_QUERY[1:])]
    if not plan.gpus:
        lines.append(
            "(no GPU here: the steps for one GPU follow; with two or more, whole gives each of two "
            "learners its own GPU; a GPU without MIG, or with MIG off, is reported as not checked)"
        )
    lines.append(f"{'build' if build else 'load'} the CUDA learner image {image} (dlworkshop up, if missing)")
    for scenario in scenarios:
        learners = " and ".join(scenario.learners)
        lines += [
            f"[{scenario.policy}] write a workshop.yaml with resources.gpu: policy {scenario.policy}, "
            f"per_learner {scenario.per_learner}, devices {', '.join(scenario.devices)}"
            + (", each learner's memory cap the hub's default for the share" if scenario.capped else ""),
            f"[{scenario.policy}] dlworkshop up (the hub on this machine's Docker)",
            f"[{scenario.policy}] log in {learners}, start their servers, ask each container which "
            "GPUs it sees (their UUIDs, from nvidia-smi inside it) and TensorFlow's GPU memory limit",
        ]
        if scenario.policy == "shared":
            lines.append(
                f"[{scenario.policy}] {scenario.learners[0]} holds {HOLD_FRACTION:.0%} of its cap and "
                f"asks for {PAST_CAP_FRACTION:.0%} of it (must raise ResourceExhaustedError); "
                f"{scenario.learners[1]} then allocates {HOLD_FRACTION:.0%} of its own (must succeed)"
            )
        lines += [
            f"[{scenario.policy}] stop the learners' servers; dlworkshop smoke-test --hub on this hub, "
            f"episodes {', '.join(GPU_EPISODES)} at size {EPISODE_SIZE} (the GPU check, each "
            "episode within its gpu budget)",
            f"[{scenario.policy}] dlworkshop down --purge",
        ]
    lines.append("write benchmarks/results/gpu-check-<UTC time>.json (the machine, each GPU, each figure)")
    if plan.gpus:  # without a GPU, the caller's message says why nothing can be checked
        lines += [f"not checked: {item.what}: {item.why}" for item in plan.not_checked]
    return lines
