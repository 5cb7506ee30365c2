"""A change to this project's code rebuilds only the learner image's last layers: the system, the
locked packages, the data, the lessons and the config stay the very same layers."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, docker_cli
from tests.fixtures.images import copy_build_context

pytestmark = [pytest.mark.docker, pytest.mark.image]
LAYER_INSTRUCTION = re.compile(r"^(COPY|ADD|RUN|WORKDIR)\s", flags=re.MULTILINE)
FIRST_CODE_LAYER = "COPY pyproject.toml"


def code_layers(dockerfile: Path) -> int:
    """How many of the last layers install the project's code: those from its first COPY on."""
    instructions = [match.start() for match in LAYER_INSTRUCTION.finditer(dockerfile.read_text())]
    first = dockerfile.read_text().index(FIRST_CODE_LAYER)
    return sum(1 for start in instructions if start >= first)


def layers(image: str) -> list[str]:
    inspected = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{json .RootFS.Layers}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(inspected.stdout)


def test_a_learner_module_changed_rebuilds_only_the_code_layers(
    base_image: str, learner_image: str, fixture_mirror: Path, fixture_registry: Path, tmp_path: Path
) -> None:
    from dlworkshop.image.build import build_learner_image

    context = copy_build_context(tmp_path / "context")
    module = context / "dlworkshop_learner" / "start.py"
    module.write_text(module.read_text() + "# changed by test_layer_cache\n")
    touched = build_learner_image(
        f"{learner_image}-touched",
        base_image=base_image,
        data_mirror=str(fixture_mirror),  # fetched into the copy anew: the same bytes, the same layer
        registry=fixture_registry,
        context=context,
    )
    try:
        before, after = layers(learner_image), layers(touched)
        last = code_layers(REPO / "Dockerfile")
        assert 0 < last < len(before) == len(after)
        assert after[:-last] == before[:-last], "a layer before the code install was rebuilt"
        assert after[-last:] != before[-last:], "the changed module did not reach the image"
    finally:
        subprocess.run([docker_cli(), "rmi", "-f", touched], capture_output=True)
