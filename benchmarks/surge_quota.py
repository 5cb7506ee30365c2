"""The surge benchmark's learners' quota: the lesson's need, and how many learners at that quota
`dlworkshop up` lets be expected at once on this host."""

from __future__ import annotations

from surge_report import COLD_ROOM

from dlworkshop.settings import format_bytes


def learner_memory() -> tuple[str, str]:
    """The learners' memory quota: 1G, or what the lesson's largest taught episode needs where
    that is more (the notebooks' `needs`, from benchmarks/results/episode-needs-*.json), and why.
    An alternative episode (04b-cifar10 beside 04-dollar-street) is left out, as check leaves it."""
    from dlworkshop.needs import lesson_needs

    needs = [need for need in lesson_needs() if need.alternative_to is None]
    largest = max(needs, key=lambda need: need.quota_bytes, default=None)
    if largest is None:
        return "1G", "no episode's needs measured"
    quota = max(largest.quota_bytes, 2**30)
    return format_bytes(
        quota
    ), f"the lesson's largest taught episode, {largest.episode}, needs {largest.figure()}"


def room_the_planner_allows(memory: str) -> int:
    """How many learners at this quota `dlworkshop up` lets be expected at once here (at most the
    cold room): the host's memory less the hub's, as dlworkshop.capacity counts it."""
    from dlworkshop.capacity import HUB_OVERHEAD_BYTES, HostFacts
    from dlworkshop.settings import parse_bytes

    carries = (HostFacts.detect().memory - HUB_OVERHEAD_BYTES) // parse_bytes(memory)
    return int(max(1, min(COLD_ROOM, carries)))
