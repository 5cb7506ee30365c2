"""A stranger's first hour, as the README's quick start has it: on a fresh Debian 12 (the deploy
tests' systemd test host image: no Docker, sudo, Python), a normal user with sudo rights clones the
repository and runs `scripts/up`, which asks for root once, saying why, installs Docker and
dlworkshop, and starts the hub; a learner logs in through the login form and runs a cell. A user
without sudo rights gets one message naming what an admin must run, and nothing is changed.

Nothing is rebuilt there: the images this run built come in as the `docker save` files the deploy
tests use (image.source: archive), and pip installs the versions this run's own venv holds."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

import pytest

from dlworkshop import contract
from tests.conftest import REPO
from tests.fixtures.ansible import ARCHIVE_CACHE, DETACH_WORK_FOLDERS, HOST_RUN_FLAGS, PREFIX, docker

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.slow]

HOST = f"{PREFIX}-newcomer"
ACCESS_CODE = "first-hour-code"
MIRROR = "/srv/mirror"
IMAGES = "/srv/images"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONSTRAINTS = "/etc/dlworkshop-test-constraints.txt"
# Checks the learner's side from inside the host (the hub listens on its localhost), with the
# clone's own venv: the login form, the server its redirect starts, a kernel, a cell.
LEARNER = """\
import sys, time
from dlworkshop.hubclient import HubClient
from dlworkshop.clients.smoke.jupyter import JupyterServer, run_code
url, code, name = sys.argv[1:4]
client = HubClient(url)
client.get(client.login(name, code, "secret-of-" + name))
deadline = time.monotonic() + 300
while client.get(f"/user/{name}/api").status_code != 200:
    assert time.monotonic() < deadline, "the learner's server did not start"
    time.sleep(1)
server = JupyterServer(f"{url}/user/{name}/", client.create_token(name, "first hour"))
kernel = server.request("POST", "api/kernels", json={"name": "python3"}).json()["id"]
print(run_code(server, kernel, "import getpass; print(getpass.getuser(), 6 * 7)"), end="")
"""


@dataclass
class FreshHost:
    """A fresh Debian 12 with systemd, reached with `docker exec` as root or as one of its users."""

    container: str

    def root(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.container, "sh", "-c", command, check=check)

    def as_user(
        self, user: str, command: str, env: dict[str, str] | None = None, timeout: float = 1500
    ) -> subprocess.CompletedProcess[str]:
        """A login shell's environment as `user`, in their clone, with no terminal (as CI has)."""
        flags = [item for name, value in (env or {}).items() for item in ("-e", f"{name}={value}")]
        return docker(
            "exec", "-u", user, "-e", f"HOME=/home/{user}", "-e", f"USER={user}", *flags,
            "-w", f"/home/{user}/dlworkshop", self.container, "bash", "-c", command,
            check=False, timeout=timeout,
        )  # fmt: skip

    def add_user(self, name: str, sudo: bool) -> None:
        """useradd, and for a sudoer a file in /etc/sudoers.d (checked with visudo)."""
        self.root(f"useradd --create-home --shell /bin/bash {name}")
        if sudo:
            self.root(
                f"echo '{name} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{name} && chmod 0440 "
                f"/etc/sudoers.d/{name} && visudo -cf /etc/sudoers.d/{name}"
            )

    def give_clone(self, user: str, clone: Path) -> None:
        docker("cp", str(clone), f"{self.container}:/home/{user}/dlworkshop")
        self.root(f"chown -R {user}:{user} /home/{user}/dlworkshop")

    def system_state(self) -> str:
        """What a half-done first run would leave on the system: packages, Docker's settings, a daemon."""
        return self.root(
            "dpkg-query -W -f='${Package} ${Status}\\n' docker.io iptables e2fsprogs python3-venv 2>&1; "
            "ls -la /etc/docker 2>&1; pidof dockerd || echo no dockerd",
            check=False,
        ).stdout


def pinned_versions() -> str:
    """This run's own venv as pip constraints: the host installs what the suite already passed with,
    not whatever the index serves today (setuptools and wheel stay free for builds, which ask for
    their own)."""
    lines = set()
    for dist in distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in ("dlworkshop", "setuptools", "wheel") and "+" not in dist.version:
            lines.add(f"{name}=={dist.version}")
    return "\n".join(sorted(lines)) + "\n"


def wait_for_boot(host: FreshHost, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = host.root("systemctl is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise AssertionError(f"the test host did not finish booting within {timeout} s")


def remove_host() -> None:
    docker("exec", HOST, "sh", "-c", DETACH_WORK_FOLDERS, check=False)
    docker("rm", "-f", "-v", HOST, check=False)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `git clone` of the project gives: the committed tree of this checkout's HEAD."""
    if not (REPO / ".git").exists():
        pytest.fail(f"{REPO} is not a git checkout: the first-run test clones it")
    target = tmp_path_factory.mktemp("clone") / "dlworkshop"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def fresh_host(
    deploy_host_image: str,
    image_archives: dict[str, Path],
    fixture_mirror: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FreshHost]:
    """One fresh host for both users; its Docker data root is an anonymous volume, gone with it."""
    remove_host()
    docker(
        "run", "-d", "--name", HOST, "--hostname", "first-hour", "--label", f"{PREFIX}=1",
        *HOST_RUN_FLAGS,
        "-v", f"{ARCHIVE_CACHE}:{IMAGES}:ro", "-v", f"{fixture_mirror}:{MIRROR}:ro",
        deploy_host_image,
    )  # fmt: skip
    try:
        host = FreshHost(HOST)
        wait_for_boot(host)
        # This machine's trust (a TLS-intercepting proxy's CA among it), as the machine's own
        # bundle, and the run's pins: what a site's image of Debian would have.
        bundle = Path(ssl.get_default_verify_paths().cafile or CA_BUNDLE)
        docker("cp", str(bundle), f"{HOST}:{CA_BUNDLE}")
        pins = tmp_path_factory.mktemp("pins") / "constraints.txt"
        pins.write_text(pinned_versions())
        docker("cp", str(pins), f"{HOST}:{CONSTRAINTS}")
        host.root(f"chmod 0644 {CA_BUNDLE} {CONSTRAINTS}")
        yield host
    finally:
        with contextlib.suppress(Exception):
            remove_host()


def workshop_yaml(image_archives: dict[str, Path], learner_image: str, hub_image: str) -> str:
    """What the newcomer writes: a small room, the images from their archives, the data mirror."""
    name, tag = learner_image.rsplit(":", 1)
    return f"""\
workshop: {{name: A stranger's first hour}}
learners: {{count: 2}}
auth: {{mode: shared-code, access_code: {ACCESS_CODE}}}
image:
  name: {name}
  tag: {tag}
  source: archive
  archive: {IMAGES}/{image_archives[learner_image].name}
  data_mirror: {MIRROR}
hub:
  image: {hub_image}
  image_archive: {IMAGES}/{image_archives[hub_image].name}
"""


PIP_ENV = {"PIP_CERT": CA_BUNDLE, "PIP_CONSTRAINT": CONSTRAINTS, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def test_a_user_without_sudo_gets_one_message_and_nothing_changes(
    fresh_host: FreshHost, clone: Path, image_archives: dict[str, Path], learner_image: str, hub_image: str
) -> None:
    fresh_host.add_user("bob", sudo=False)
    fresh_host.give_clone("bob", clone)
    (clone / "workshop.yaml").write_text(workshop_yaml(image_archives, learner_image, hub_image))
    docker("cp", str(clone / "workshop.yaml"), f"{HOST}:/home/bob/dlworkshop/workshop.yaml")
    before = fresh_host.system_state()
    result = fresh_host.as_user("bob", "scripts/up -c workshop.yaml", env=PIP_ENV, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "", result.stdout  # nothing said before the refusal, nothing begun
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert (
        "scripts/up needs root for:" in errors[0] and "You are bob, not root, and sudo refused" in errors[0]
    )
    # Exactly what is missing on this host (all of it, unless the other user's run came first),
    # and what `dlworkshop up` itself does as root.
    fresh = "docker.io install ok installed" not in before
    expected = ["firewall rules", "loop devices"]
    if fresh:
        expected += ["installing docker.io", "/etc/docker/daemon.json", "starting the Docker engine"]
    for reason in expected:
        assert reason in errors[0], (reason, errors[0])
    assert "Nothing was changed." in errors[0]
    assert "ask an admin to run `sudo /home/bob/dlworkshop/scripts/up`" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert fresh_host.system_state() == before
    left = fresh_host.root("ls -A /home/bob/dlworkshop; find /home/bob ! -user bob", check=False).stdout
    assert ".venv" not in left.split() and ".cache" not in left.split(), left


def test_a_user_with_sudo_brings_the_hub_up_and_a_learner_runs_a_cell(
    fresh_host: FreshHost, clone: Path, image_archives: dict[str, Path], learner_image: str, hub_image: str
) -> None:
    fresh_host.add_user("ada", sudo=True)
    fresh_host.give_clone("ada", clone)
    (clone / "workshop.yaml").write_text(workshop_yaml(image_archives, learner_image, hub_image))
    docker("cp", str(clone / "workshop.yaml"), f"{HOST}:/home/ada/dlworkshop/workshop.yaml")
    fresh_host.root("chown ada:ada /home/ada/dlworkshop/workshop.yaml")
    started = fresh_host.as_user("ada", "scripts/up -c workshop.yaml", env=PIP_ENV)
    output = started.stdout + started.stderr
    assert started.returncode == 0, output[-6000:]
    # Root asked for once, saying why, though setup-host and `dlworkshop up` both need it.
    assert output.count("needs root, through sudo (asked once), for:") == 1, output[-6000:]
    assert "installing docker.io" in output and "`dlworkshop up` (the firewall rules" in output
    # The closing message, whole on one line although the output is a pipe.
    assert (
        f"type the workshop code {ACCESS_CODE}, a name and a secret of their own (the first login"
        in started.stdout
    )
    assert "The workshop hub is up at http://localhost:8000" in started.stdout
    # Nothing in the clone is root's: .venv and the rest stay ada's.
    assert fresh_host.root("find /home/ada ! -user ada", check=False).stdout == ""
    assert fresh_host.root("stat -c %U /home/ada/dlworkshop/.venv/bin/python").stdout.strip() == "ada"
    # As ada herself, the engine runs but its socket is not hers: told so (and what to do), never
    # "not running"; and `down` asks for root before it touches anything.
    assert "may not open its socket" in output and "newgrp docker" in output
    names = fresh_host.as_user("ada", ".venv/bin/dlworkshop accounts names -c workshop.yaml")
    assert names.returncode == 2, names.stdout + names.stderr
    assert "ada may not open the Docker engine's socket /var/run/docker.sock" in names.stderr
    assert "newgrp docker" in names.stderr and "not running" not in names.stderr
    refused = fresh_host.as_user("ada", ".venv/bin/dlworkshop down -c workshop.yaml")
    assert refused.returncode == 2 and "`dlworkshop down` needs root" in refused.stderr, refused.stderr
    learner = fresh_host.as_user(
        "ada",
        f".venv/bin/python - http://127.0.0.1:8000 {ACCESS_CODE} grace <<'EOF'\n{LEARNER}EOF",
        timeout=600,
    )
    assert learner.returncode == 0, learner.stdout + learner.stderr
    assert learner.stdout.split() == [contract.learner.USER, "42"], learner.stdout
