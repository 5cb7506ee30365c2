"""What JupyterLab itself shows a learner in the image."""

from __future__ import annotations

import json

import pytest

from tests.image.test_learner_image import docker_run

pytestmark = [pytest.mark.docker, pytest.mark.image]

# Starts the learner's Jupyter server inside the container and prints the page config /lab serves.
SERVED_PAGE_CONFIG = """
import json, re, subprocess, sys, time, urllib.request
server = subprocess.Popen(
    ["jupyter", "server", "--ServerApp.token=t", "--ServerApp.port=8888", "--ServerApp.ip=127.0.0.1"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
try:
    for _ in range(120):
        try:
            page = urllib.request.urlopen("http://127.0.0.1:8888/lab?token=t", timeout=5).read().decode()
            break
        except OSError:
            time.sleep(0.5)
    else:
        sys.exit("the server did not answer")
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    print(json.dumps(json.loads(found.group(1))))
finally:
    server.terminate()
"""


def test_jupyterlab_does_not_ask_learners_about_jupyter_news(learner_image: str) -> None:
    """The announcements plugin (news and update checks) is disabled in the page /lab serves."""
    result = docker_run(learner_image, "--network", "none", command=["python", "-c", SERVED_PAGE_CONFIG])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    config = json.loads(result.stdout.splitlines()[-1])
    assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
