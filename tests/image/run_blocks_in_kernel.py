"""Runs inside the learner image (mounted by tests/image/test_upstream_lesson.py): each episode's code
blocks in order, in one fresh Python kernel per episode, started in the folder the plan names, as a
learner's notebook runs them. Prints one JSON line per block; never stops at a failing block.

    python run_blocks_in_kernel.py plan.json
    plan.json: {"cwd": "/home/jovyan/work", "timeout": 600, "episodes": {"2-keras": ["code", ...]}}

Standard library and the image's jupyter_client only.
"""

import json
import re
import sys
import time

from jupyter_client.manager import start_new_kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_episode(episode: str, blocks: list[str], cwd: str, timeout: float) -> None:
    manager, client = start_new_kernel(kernel_name="python3", cwd=cwd)
    try:
        for number, code in enumerate(blocks, 1):
            started = time.monotonic()
            result = {"episode": episode, "block": number}
            try:
                # An output hook of our own: the blocks' printed output is not wanted here.
                reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda message: None)
                content = reply["content"]
                result["status"] = content["status"]
                if content["status"] == "error":
                    result["ename"], result["evalue"] = content["ename"], content["evalue"]
                    result["traceback"] = [ANSI.sub("", line) for line in content["traceback"]][-6:]
            except TimeoutError:
                manager.interrupt_kernel()
                result.update(status="error", ename="TimeoutError", evalue=f"over {timeout} s")
            result["seconds"] = round(time.monotonic() - started, 2)
            print(json.dumps(result), flush=True)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main(plan_file: str) -> None:
    with open(plan_file, encoding="utf-8") as handle:
        plan = json.load(handle)
    for episode, blocks in plan["episodes"].items():
        run_episode(episode, blocks, plan["cwd"], plan["timeout"])


if __name__ == "__main__":
    main(sys.argv[1])
