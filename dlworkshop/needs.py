"""What each episode needs, measured (benchmarks/episode_needs.py writes the figures, the notebooks'
metadata carries them as `needs`), and the rules that follow from them: the smallest memory quota
that runs an episode, a plan whose quota cannot teach the lesson, and why a kernel died.

The figures are a learner container's peak memory (its cgroup's, as the engine's limit counts it),
CPU-seconds and wall time per episode, per variant (cpu/gpu) and size (smoke/full). A figure not
measured is recorded as {"missing": why}; the rules use the largest measured size of the CPU
variant, which a plan on a GPU also needs in host memory.

The peak is the largest of the episode's repeated runs, and the margin on top of it (`needs.margin`
in the metadata, the results file's `margin.fraction`) is fitted to those runs: the widest
relative spread (max - min) / min between the runs of one episode, up to a whole percent
(benchmarks/episode_needs.py's fitted_margin; tests/package/test_needs.py recomputes it from the
file's runs). A quota below a peak is a kill some run met; one within the margin above it, a kill
the next run may meet.

Pure functions: the smoke test, `check` and the metadata command call them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlworkshop.errors import ConfigError
from dlworkshop.settings import Settings, format_bytes

# Quotas are suggested in steps Docker and people read easily.
QUOTA_STEP = 64 * 2**20
SIZES = ("full", "smoke")  # the larger first: the rules prefer it where it was measured


@dataclass(frozen=True)
class EpisodeNeed:
    """One episode's measured peak memory and what a quota needs on top (the file's margin)."""

    episode: str
    peak_bytes: int
    cpu_seconds: float | None
    size: str
    margin: float
    # Another notebook of the same episode number (04b-cifar10 for 04-dollar-street): a workshop
    # teaches one of them, the first by name unless it chooses the other.
    alternative_to: str | None = None

    @property
    def quota_bytes(self) -> int:
        """The smallest quota that runs the episode: its peak plus the margin, up to a 64M step."""
        return math.ceil(self.peak_bytes * (1 + self.margin) / QUOTA_STEP) * QUOTA_STEP

    def figure(self) -> str:
        return f"about {format_bytes(self.quota_bytes)} (peak {mib(self.peak_bytes)} at {self.size} size)"


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def need_of(name: str, needs: dict[str, Any], alternative_to: str | None = None) -> EpisodeNeed | None:
    """The episode's need from its metadata's `needs` (None where nothing was measured)."""
    variant = needs.get("cpu", {})
    for size in SIZES:
        figures = variant.get(size, {})
        if isinstance(figures, dict) and figures.get("memory_bytes"):
            return EpisodeNeed(
                name,
                int(figures["memory_bytes"]),
                figures.get("cpu_seconds"),
                size,
                float(needs.get("margin", 0.0)),
                alternative_to,
            )
    return None


def memory_verdict(memory: int, needs: list[EpisodeNeed]) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a per-learner memory quota against the episodes' needs.

    Below a taught episode's measured peak (the largest of its runs) the kernel is killed: a
    problem naming the first such episode, its figure, and the smallest quota that runs every
    taught episode. At or above every peak but below an episode's peak plus the margin (the
    run-to-run spread the results file records): a warning naming the episodes that may be
    killed. An alternative episode (04b-cifar10 beside 04-dollar-street) that does not fit is a
    warning naming it and the quota that would teach it instead."""
    taught = [need for need in needs if need.alternative_to is None]
    if not taught:
        return [], []
    smallest = max(need.quota_bytes for need in taught)
    warnings = [
        f"resources.memory: {format_bytes(memory)} per learner cannot teach episode {need.episode}, the "
        f"alternative to {need.alternative_to}: it needs {need.figure()}, its kernel "
        f"{'would' if memory < need.peak_bytes else 'may'} be killed for memory; set resources.memory to "
        f"{format_bytes(max(smallest, need.quota_bytes))} to teach it instead"
        for need in needs
        if need.alternative_to is not None and memory < need.quota_bytes
    ]
    killed = [need for need in taught if memory < need.peak_bytes]
    if killed:
        first = killed[0]
        others = f" (also {', '.join(n.episode for n in killed[1:])})" if killed[1:] else ""
        return [
            f"resources.memory: {format_bytes(memory)} per learner cannot teach the lesson: episode "
            f"{first.episode} needs {first.figure()}, its kernel would be killed for memory{others}; "
            f"fix: set resources.memory to at least {format_bytes(smallest)}"
        ], warnings
    tight = [need for need in taught if memory < need.quota_bytes]
    if tight:
        warnings.insert(
            0,
            f"resources.memory: {format_bytes(memory)} per learner is within the measured margin of "
            f"episode(s) {', '.join(n.episode for n in tight)} (each needs "
            f"{', '.join(format_bytes(n.quota_bytes) for n in tight)}): they may be killed for memory; "
            f"{format_bytes(smallest)} runs every episode",
        )
    return [], warnings


def killed_reason(limit: int | None, need: EpisodeNeed | None, episode: bool = True) -> str:
    """What the smoke test says of a kernel killed for memory (`episode`: while running one)."""
    at = f" at {format_bytes(limit)}" if limit else ""
    wanted = ""
    if episode:
        wanted = (
            f"; this episode needs {need.figure()}"
            if need
            else "; this episode's need is not measured (benchmarks/episode_needs.py)"
        )
    return f"the kernel was killed for memory{at}{wanted}"


def died_reason(
    state: str,
    probe: dict[str, Any] | None,
    before: dict[str, Any] | None,
    need: EpisodeNeed | None,
    episode: bool = True,
) -> str:
    """Why an episode's kernel died, from the container's memory cgroup before and after: a kill
    for memory where the cgroup counted one (or usage reached its limit), else the plain death."""
    if probe is None:
        return f"{state}; the learner's server did not answer afterwards (its container may have been killed)"
    kills = probe.get("oom_kills")
    earlier = (before or {}).get("oom_kills")
    limit = probe.get("limit")
    if kills is not None and earlier is not None and kills > earlier:
        return killed_reason(limit, need, episode)
    peak = probe.get("peak")
    # Without an OOM count (some engines hide it), a peak at the limit says the same.
    if kills is None and limit and peak and peak >= limit * 0.98:
        return killed_reason(limit, need, episode)
    return f"{state}, not for memory (peak {mib(peak) if peak else 'unknown'}); see the server's log"


# The room view marks a learner whose memory reaches this share of what would kill their kernel:
# their quota, or the measured peak of the heaviest episode they have open (past it, the learner
# runs more than the lesson measured).
NEAR = 0.9


def memory_watch(
    used: int | None, limit: int | None, notebooks: list[str], kills: int | None, needs: list[EpisodeNeed]
) -> list[str]:
    """What the room view says of one learner's memory (`dlworkshop status`): kernels their
    container killed for memory so far, and a use near their quota or near the measured peak of
    the episode they run (`notebooks`: the paths their kernels run)."""
    notes = []
    if kills:
        notes.append(f"{kills} kernel{'s' if kills > 1 else ''} killed for memory")
    open_episodes = {Path(path).stem for path in notebooks}
    running = [need for need in needs if need.episode in open_episodes]
    heaviest = max(running, key=lambda need: need.peak_bytes, default=None)
    if used is not None and limit and used >= NEAR * limit:
        notes.append(f"near its quota ({mib(used)} of {format_bytes(limit)})")
    elif used is not None and heaviest and used >= NEAR * heaviest.peak_bytes:
        notes.append(
            f"near the measured peak of {heaviest.episode} ({mib(used)}, peak {mib(heaviest.peak_bytes)})"
        )
    return notes


def results_needs(results: dict[str, Any], episode: str) -> dict[str, Any]:
    """An episode's `needs` metadata from a results file (benchmarks/results/episode-needs-*.json)."""
    figures = results["episodes"].get(episode, {})
    keep = ("memory_bytes", "cpu_seconds", "wall_seconds")

    def variant(sizes: dict[str, Any]) -> dict[str, Any]:
        return {
            size: {k: value[k] for k in keep} if "missing" not in value else {"missing": value["missing"]}
            for size, value in sizes.items()
        }

    return {
        "results": results["file"],
        "margin": results["margin"]["fraction"],
        **{
            name: variant(sizes) if "missing" not in sizes else dict(sizes) for name, sizes in figures.items()
        },
    }


def latest_results(folder: Path) -> dict[str, Any] | None:
    """The newest committed episode-needs results file, with its name under "file"."""
    files = sorted(folder.glob("episode-needs-*.json"))
    if not files:
        return None
    data = json.loads(files[-1].read_text())
    return {**data, "file": f"benchmarks/results/{files[-1].name}"}


def write_needs_metadata(lessons: Path, results: dict[str, Any]) -> list[Path]:
    """Each notebook's metadata.dlworkshop.needs set from the results file (the notebooks keep
    nbformat's layout: one-space indent, a final newline); the notebooks changed."""
    changed = []
    for path in sorted(lessons.glob("[0-9]*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if path.stem not in results["episodes"]:
            continue
        notebook["metadata"].setdefault("dlworkshop", {})["needs"] = results_needs(results, path.stem)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        if text != path.read_text(encoding="utf-8"):
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def lesson_needs(lessons: list[Any] | None = None) -> list[EpisodeNeed]:
    """The measured need of every episode whose notebook carries one, in episode order."""
    from dlworkshop.lessons import list_lessons

    lessons = lessons or list_lessons()
    first_of: dict[int, str] = {}
    for lesson in lessons:  # in name order: 04-dollar-street before 04b-cifar10
        first_of.setdefault(lesson.episode, lesson.name)
    found = (
        need_of(
            lesson.name,
            lesson.needs,
            None if first_of[lesson.episode] == lesson.name else first_of[lesson.episode],
        )
        for lesson in lessons
    )
    return [need for need in found if need is not None]


def plan_verdict(settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a workshop's per-learner memory against the lesson's measured needs:
    what `check`, `up`, `render` and `deploy` refuse on and warn of, decided here once."""
    return memory_verdict(settings.resources.memory, lesson_needs())


def refuse_if_cannot_teach(settings: Settings) -> None:
    """For commands that do not run the whole preflight (render, deploy): stop on a quota in which
    an episode's kernel is certainly killed."""
    problems, _ = plan_verdict(settings)
    if problems:
        raise ConfigError(
            "the lesson cannot run in these quotas",
            problems=problems,
            fix="raise resources.memory in workshop.yaml; `dlworkshop check` shows each episode's need",
        )


@dataclass(frozen=True)
class EpisodeLoad:
    """One episode with the room training at once on a host: how long one run takes then."""

    episode: str
    learners: int
    cores: float
    cpu_seconds: float
    seconds: float
    budget: float
    size: str

    @property
    def fits(self) -> bool:
        return self.seconds <= self.budget


def run_seconds(cpu_seconds: float, learners: int, cores: float, learner_cpus: float) -> float:
    """Seconds one learner's run takes while `learners` run it at once: the host's cores shared
    among them, and never faster than the learner's own CPU quota allows."""
    return max(cpu_seconds * learners / cores, cpu_seconds / learner_cpus)


def episode_loads(
    needs: list[EpisodeNeed], budgets: dict[str, float], learners: int, cores: float, learner_cpus: float
) -> list[EpisodeLoad]:
    """Per measured episode, the room (`learners` at once) on `cores` against the episode's CPU
    budget for the size it was measured at (`budgets`: episode -> that budget)."""
    return [
        EpisodeLoad(
            need.episode,
            learners,
            cores,
            need.cpu_seconds,
            run_seconds(need.cpu_seconds, learners, cores, learner_cpus),
            budgets[need.episode],
            need.size,
        )
        for need in needs
        if need.cpu_seconds and need.episode in budgets
    ]


def smallest_host(
    needs: list[EpisodeNeed], budgets: dict[str, float], learners: int, hub_bytes: int
) -> tuple[int, int]:
    """(cores, memory bytes, whole GiB) of the smallest host on which every measured episode runs within its
    budget with the whole room training at once, each learner in the quota its episodes need (the
    taught episodes: an alternative one, 04b-cifar10, is not counted)."""
    needs = [need for need in needs if need.alternative_to is None]
    cores = max(
        (
            math.ceil(need.cpu_seconds * learners / budgets[need.episode])
            for need in needs
            if need.cpu_seconds and need.episode in budgets
        ),
        default=1,
    )
    memory = learners * max((need.quota_bytes for need in needs), default=0) + hub_bytes
    return max(1, cores), math.ceil(memory / 2**30) * 2**30  # hosts come in whole gigabytes
