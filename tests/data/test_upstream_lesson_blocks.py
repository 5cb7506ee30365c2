"""The upstream lesson's snapshot (tests/data/upstream_lesson/): its code blocks as the image test
runs them, and the registry staging every local file those blocks read at exactly the path they
name, in both folders a learner's kernel starts in."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dlworkshop.data.registry import load_registry
from tests.fixtures.upstream_lesson import UPSTREAM_LESSON, cap_epochs, episode_files, python_blocks, source

# Relative to the work folder: its root, and the lessons' folder (dlworkshop_learner.start copies
# the lessons to <work>/lessons).
KERNEL_FOLDERS = ["", "lessons/"]


def test_the_snapshot_names_its_commit_and_licence_and_has_122_python_blocks() -> None:
    info = source()
    assert info["commit"] == "ebbde111063ed057c1b38bb98cb427938bb5bcbb"
    licence = (UPSTREAM_LESSON / "LICENSE.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in licence and "MIT" in licence
    counted = {path.stem: len(python_blocks(path)) for path in episode_files()}
    assert counted == info["python_blocks"]
    assert sum(counted.values()) == 122


def test_indented_blocks_inside_callouts_are_dedented() -> None:
    blocks = python_blocks(UPSTREAM_LESSON / "episodes" / "3-monitor-the-model.md")
    callout = blocks[33]
    assert callout.code.startswith("cols = [")
    assert all(compile(block.code, block.name, "exec") for block in blocks)


def test_capping_epochs_changes_nothing_else() -> None:
    capped = 0
    for path in episode_files():
        for block in python_blocks(path):
            new = cap_epochs(block.code, 1)
            strip = re.compile(r"epochs(\s*)=(\s*)\d+")
            assert strip.sub("epochs=N", new) == strip.sub("epochs=N", block.code)
            capped += new != block.code
    assert cap_epochs("fit(x, epochs = 200, verbose=2)", 1) == "fit(x, epochs = 1, verbose=2)"
    assert capped == 16  # 1 block in episode 2, 7 in 3, 7 in 4, 1 in 5


def local_files_the_blocks_read() -> set[str]:
    """Paths of local files the lesson's code opens: pd.read_csv("<file>"), DenseNet121(weights=
    "<file>.h5"), np.load(DATA_FOLDER / "<file>") with DATA_FOLDER = pathlib.Path("<folder>")."""
    found: set[str] = set()
    for path in episode_files():
        strings: dict[str, str] = {}  # name = "text", or name = pathlib.Path("folder/")
        folders: dict[str, str] = {}
        for block in python_blocks(path):
            for node in ast.walk(ast.parse(block.code)):
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                    if isinstance(value, ast.Call) and value.args:
                        value = value.args[0]
                        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                            folders[target.id] = str(value.value)
                    elif isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                        strings[target.id] = str(value.value)
                if not isinstance(node, ast.Call):
                    continue
                called = ast.unparse(node.func)
                if called.endswith("read_csv"):
                    argument = node.args[0]
                    if isinstance(argument, ast.Constant):
                        found.add(str(argument.value))
                    elif isinstance(argument, ast.Name) and argument.id in strings:
                        found.add(strings[argument.id])
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "weights"
                        and isinstance(value, ast.Constant)
                        and value.value != "imagenet"
                    ):
                        found.add(str(value.value))
                if called.endswith("np.load") and isinstance(node.args[0], ast.BinOp):
                    left, right = node.args[0].left, node.args[0].right
                    if isinstance(left, ast.Name) and isinstance(right, ast.Constant) and left.id in folders:
                        found.add(folders[left.id] + str(right.value))
    return {name for name in found if "://" not in name}


def test_every_local_file_the_episodes_read_is_staged_at_that_path_in_both_kernel_folders() -> None:
    read = local_files_the_blocks_read()
    assert read == {
        "weather_prediction_dataset_light.csv",
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "data/dataset_dollarstreet/train_images.npy",
        "data/dataset_dollarstreet/train_labels.npy",
        "data/dataset_dollarstreet/test_images.npy",
        "data/dataset_dollarstreet/test_labels.npy",
    }
    registry = load_registry(Path(__file__).resolve().parents[2] / "lessons" / "datasets.yaml")
    staged = {
        target.path: item.name
        for _, item in registry.files()
        for target in item.stage
        if target.cache == "work"
    }
    for name in read:
        for folder in KERNEL_FOLDERS:
            assert Path(staged.get(folder + name, "")).name == Path(name).name, (
                f"{folder}{name} is not staged"
            )
