"""The README's figures for what the CUDA image costs a test run are those of a committed results file
(benchmarks/cuda_image_cost.py writes them; no image is built here)."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO


def test_the_readme_quotes_the_cuda_image_cost_from_its_results_file() -> None:
    readme = REPO.joinpath("README.md").read_text()
    cited = re.search(r"benchmarks/results/(cuda-image-cost-\d{8}T\d{6}Z\.json)", readme)
    assert cited, "the README's test section names no CUDA image cost results file"
    result = json.loads((REPO / "benchmarks" / "results" / cited[1]).read_text())
    image = result["cuda_image"]
    paragraph = readme[readme.index("The CUDA learner image is built and checked in every run") :][:900]
    paragraph = " ".join(paragraph.split())
    assert f"its build took {image['build_seconds']:.0f} s" in paragraph
    assert f"a {image['size_bytes'] / 1e9:.2f} GB image" in paragraph
    assert f"load average {result['load_before'][0]:.1f} at the start" in paragraph
    assert f"{result['machine']['cores']}-core machine" in paragraph
