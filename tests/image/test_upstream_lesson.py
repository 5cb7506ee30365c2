"""The upstream lesson runs as printed in the learner image.

Every Python code block of the upstream episodes (tests/data/upstream_lesson/, at the commit its
source.yaml names) runs in order, one fresh kernel per episode started in ~/work as a learner's
notebook there would, with the network off. The one change to the lesson's code: `epochs=N` becomes
`epochs=1` (the CNNs of episodes 4 and 5 train on the small generated fixtures). A block that fails
for a reason of this environment (a missing file, package, cache or URL) fails the test; the blocks
that fail because of a mistake in the lesson itself are listed below by name, with the reason, and
reported upstream-ready in the README.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from dlworkshop.contract import learner
from tests.fixtures.upstream_lesson import LESSON_MISTAKES, cap_epochs, episode_files, python_blocks, source
from tests.image.test_learner_image import docker_run, offline_args

pytestmark = [pytest.mark.docker, pytest.mark.image, pytest.mark.slow]
EPOCHS = 1
RUNNER = Path(__file__).with_name("run_blocks_in_kernel.py")
PLAN_MOUNT = "/opt/dlworkshop-test-upstream"

# The files the lesson tells learners to download beside their notebook, and its Dollar Street folder.
LESSON_FILES = [
    "weather_prediction_dataset_light.csv",
    "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    *(
        f"data/dataset_dollarstreet/{split}_{kind}.npy"
        for split in ("train", "test")
        for kind in ("images", "labels")
    ),
]
# The folders a learner's kernel starts in: the server's root (~/work), where the launcher makes a new
# notebook, and the lessons' folder, where a learner who opened our notebooks makes one.
KERNEL_FOLDERS = [learner.WORK_FOLDER, f"{learner.WORK_FOLDER}/lessons"]


def run_episodes(image: str, fixture_mirror: Path, plan_dir: Path) -> list[dict[str, object]]:
    episodes = {
        path.stem: [cap_epochs(block.code, EPOCHS) for block in python_blocks(path)]
        for path in episode_files()
    }
    plan_dir.mkdir()
    plan_dir.chmod(0o755)  # read by the learner's UID in the container
    (plan_dir / "plan.json").write_text(
        json.dumps({"cwd": learner.WORK_FOLDER, "timeout": 600, "episodes": episodes})
    )
    shutil.copyfile(RUNNER, plan_dir / RUNNER.name)
    result = docker_run(
        image,
        *offline_args(fixture_mirror),
        "-v",
        f"{plan_dir}:{PLAN_MOUNT}:ro",
        command=["python", f"{PLAN_MOUNT}/{RUNNER.name}", f"{PLAN_MOUNT}/plan.json"],
        timeout=2400,
    )
    results = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    expected = sum(len(blocks) for blocks in episodes.values())
    assert len(results) == expected, (
        f"the runner reported {len(results)} of {expected} blocks:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    )
    return results


def environment_failures(results: list[dict[str, object]]) -> list[str]:
    """Failed blocks that are not the lesson's listed mistakes, each with its error."""
    failures = []
    for result in results:
        if result["status"] == "ok":
            continue
        name = f"{result['episode']}#{result['block']}"
        mistake = LESSON_MISTAKES.get(name)
        if mistake and result["ename"] == mistake[0] and f"'{mistake[1]}'" in str(result["evalue"]):
            continue
        traceback = "\n    ".join(str(line) for line in result.get("traceback", []))
        failures.append(f"{name}: {result['ename']}: {result['evalue']}\n    {traceback}")
    return failures


def test_every_block_of_the_upstream_episodes_runs_offline_in_a_kernel_in_the_work_folder(
    learner_image: str, fixture_mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    results = run_episodes(learner_image, fixture_mirror, tmp_path / "plan")
    ran = Counter(str(r["episode"]) for r in results if r["status"] == "ok")
    printed = source()["python_blocks"]
    assert isinstance(printed, dict)
    with capsys.disabled():
        print(f"\nupstream lesson {source()['commit']}: blocks that ran, per episode")
        for episode, count in printed.items():
            print(f"  {episode}: {ran[episode]} of {count}")
        print(f"  all: {sum(ran.values())} of {len(results)}, in {time.monotonic() - started:.0f} s")
    assert not environment_failures(results), "\n".join(environment_failures(results))
    failed = {f"{r['episode']}#{r['block']}" for r in results if r["status"] != "ok"}
    # A listed mistake that now runs means the snapshot changed: update the list and the README.
    assert failed == set(LESSON_MISTAKES)
    assert sum(ran.values()) == sum(printed.values()) - len(LESSON_MISTAKES)


def test_the_lessons_files_are_read_only_links_in_both_kernel_folders_and_a_learners_own_file_is_kept(
    learner_image: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "weather_prediction_dataset_light.csv").write_text("my own download\n")
    subprocess.run(["chown", "-R", f"{learner.UID}:{learner.UID}", str(work)], check=True)
    probe = (
        "import json, os, sys\n"
        "report = {}\n"
        f"for folder in {KERNEL_FOLDERS!r}:\n"
        f"    for name in {LESSON_FILES!r}:\n"
        "        path = os.path.join(folder, name)\n"
        "        report[path] = [os.path.islink(path), os.path.realpath(path), os.access(os.path.realpath(path), os.W_OK)]\n"
        "print(json.dumps(report))\n"
    )
    result = docker_run(
        learner_image,
        "--network",
        "none",
        "-v",
        f"{work}:{learner.WORK_FOLDER}",
        command=["python", "-c", probe],
    )
    report = json.loads(result.stdout.splitlines()[-1]) if result.stdout else {}
    assert len(report) == len(KERNEL_FOLDERS) * len(LESSON_FILES), result.stderr[-3000:]
    own = f"{learner.WORK_FOLDER}/weather_prediction_dataset_light.csv"
    for path, (is_link, target, writable) in report.items():
        if path == own:
            assert not is_link
            continue
        assert is_link and target.startswith(f"{learner.DATA_ROOT}/") and not writable, (path, target)
    assert (work / "weather_prediction_dataset_light.csv").read_text() == "my own download\n"
