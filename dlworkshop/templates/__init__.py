"""Files the package writes for users (example config, printable pages)."""

from __future__ import annotations

from importlib.resources import files
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlworkshop.capacity import HostFacts

# The lesson's room: the example plans for this many learners where the machine's memory allows.
EXAMPLE_LEARNERS = 20


def read_template(name: str) -> str:
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def example_config(host: HostFacts | None = None) -> str:
    """The commented example workshop.yaml, sized for `host` (default: this machine): as many of
    the lesson's 20 learners as its memory and GPUs carry at once, at least one. The file says which
    machine it was sized for, as a `Plan check:` line `dlworkshop check` can run anywhere."""
    from dlworkshop.capacity import HostFacts, check_capacity
    from dlworkshop.settings import parse_settings

    detected = host or HostFacts.detect()
    # Whole GiB, rounded down: the numbers the file prints are the ones it was sized with.
    gib = 1024**3
    planned = HostFacts(
        cpus=float(int(detected.cpus)), memory=detected.memory // gib * gib, gpus=detected.gpus
    )
    template = Template(read_template("workshop.example.yaml"))
    values = {"cpus": int(planned.cpus), "memory": f"{planned.memory // gib}G", "gpus": planned.gpus}
    full_room = parse_settings(template.substitute(values, learners=EXAMPLE_LEARNERS))
    learners = max(1, min(EXAMPLE_LEARNERS, check_capacity(full_room, planned).carries))
    return template.substitute(values, learners=learners)
