"""Runs inside a learner image (mounted by tests/image/test_learner_variants.py): a fresh Python
kernel, as a learner's notebook starts one, runs a notebook's first TensorFlow cell; prints, as one
JSON line, every stream message the kernel sent (what the notebook would show under its cells,
stderr included: ipykernel forwards what the process's C++ libraries write), and whether the cell
ran. A second cell waits a moment, so lines the kernel forwards late are read too.

    python first_import_in_kernel.py

Standard library and the image's jupyter_client only.
"""

import json
import queue

from jupyter_client.manager import start_new_kernel

FIRST_CELL = "import tensorflow as tf\nprint(float(tf.reduce_sum(tf.ones((2, 2)))))"
SETTLE_CELL = "import sys, time\nsys.stdout.flush(); sys.stderr.flush(); time.sleep(2)"


def run(client, code: str, streams: list) -> str:
    """Run `code`; collect every stream message meanwhile (of any cell); its reply's status."""
    msg_id = client.execute(code)
    while True:
        try:
            message = client.get_iopub_msg(timeout=300)
        except queue.Empty:
            return "timeout"
        if message["msg_type"] == "stream":
            streams.append({"name": message["content"]["name"], "text": message["content"]["text"]})
        elif message["msg_type"] == "error":
            streams.append({"name": "error", "text": message["content"]["evalue"]})
        idle = message["msg_type"] == "status" and message["content"]["execution_state"] == "idle"
        if idle and message["parent_header"].get("msg_id") == msg_id:
            break
    return client.get_shell_msg(timeout=60)["content"]["status"]


def main() -> None:
    manager, client = start_new_kernel(kernel_name="python3")
    streams: list = []
    try:
        status = run(client, FIRST_CELL, streams)
        run(client, SETTLE_CELL, streams)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    print(json.dumps({"status": status, "streams": streams}))


if __name__ == "__main__":
    main()
