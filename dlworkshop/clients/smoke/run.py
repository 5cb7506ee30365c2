"""The smoke test from start to report: one target, every check, nothing left behind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from dlworkshop.clients import instructor
from dlworkshop.clients.smoke import checks as smoke_checks
from dlworkshop.clients.smoke.report import print_summary, write_report
from dlworkshop.clients.smoke.targets import TargetFailed, hub_target, image_target
from dlworkshop.errors import CheckFailed, WorkshopError
from dlworkshop.hubclient import HubError
from dlworkshop.lessons import Lesson, Size, list_lessons
from dlworkshop.settings import Settings


@dataclass
class SmokeOptions:
    hub: str | None
    image: str | None
    episodes: list[str] | None
    size: Size
    report: Path
    password: str | None = None
    token: str | None = None
    spawn_timeout: float = 300


def selected_lessons(episodes: list[str] | None) -> list[Lesson]:
    lessons = list_lessons()
    if not episodes:
        return lessons
    chosen = [lesson for lesson in lessons if lesson.name in episodes or str(lesson.episode) in episodes]
    unknown = set(episodes) - {lesson.name for lesson in chosen} - {str(lesson.episode) for lesson in chosen}
    if unknown:
        raise WorkshopError(
            f"unknown episode(s): {', '.join(sorted(unknown))}",
            fix=f"choose from {', '.join(lesson.name for lesson in lessons)}",
        )
    return chosen


def smoke_test(settings: Settings, options: SmokeOptions, console: Console) -> list[smoke_checks.CheckResult]:
    if bool(options.hub) == bool(options.image):
        raise WorkshopError(
            "give either --hub URL or --image IMAGE",
            fix="dlworkshop smoke-test --hub https://hub.example.org",
        )
    lessons = selected_lessons(options.episodes)
    results: list[smoke_checks.CheckResult] = []
    if options.hub:
        user = settings.learners.smoke_test_user
        password, secret = options.password, None
        if settings.auth.mode == "shared-code" and settings.auth.access_code:
            password = password or settings.auth.access_code.get_secret_value()
            # The smoke-test learner claims its name with a secret only this machine knows.
            secret = instructor.secret_for(user)
        where = f"hub {options.hub} as {user}"
        target = hub_target(options.hub, user, password, options.token, options.spawn_timeout, secret)
    else:
        assert options.image is not None  # the CLI asks for --hub or --image
        where = f"image {options.image}"
        target = image_target(
            options.image, settings.resources.cpu, settings.resources.memory, options.spawn_timeout
        )
    try:
        with console.status(f"smoke test of {where}: starting") as status, target as running:
            results += running.checks
            server = running.server
            status.update("checking packages, data, threads and GPU")
            kernel = server.start_session(f"{smoke_checks.WORK_FOLDER}/checks.ipynb")
            try:
                results.append(smoke_checks.check_packages(server, kernel))
                results.append(smoke_checks.check_data(server, kernel))
                gpu = settings.resources.gpu
                # A bare image gets no GPU share; only a hub hands them out.
                policy = gpu.policy if options.hub else "none"
                hardware, hardware_results = smoke_checks.hardware_checks(
                    server, kernel, policy, gpu.docker_device_requests
                )
                results += hardware_results
                # On Slurm the spawn check also says which node the job landed on and how long it
                # queued (the spawn page's message may be gone when the start was quick).
                spawn = next((r for r in results if r.check == "spawn"), None)
                if spawn is not None and "Slurm job" not in spawn.measured:
                    spawn.measured += smoke_checks.engine_placement(server, kernel)
            finally:
                server.shutdown_kernel(kernel)
            for lesson in lessons:
                results.append(
                    smoke_checks.run_episode(
                        server, lesson, options.size, hardware, lambda text: status.update(text)
                    )
                )
                console.print(
                    f"{'pass' if results[-1].passed else 'FAIL'}  {results[-1].check}  {results[-1].measured}"
                )
    except TargetFailed as stopped:
        results.append(stopped.result)
    except (OSError, httpx.HTTPError, HubError, smoke_checks.CellError) as exc:
        results.append(smoke_checks.CheckResult("smoke test run", False, f"{type(exc).__name__}: {exc}"))
    files = write_report(results, options.report, where, options.size)
    print_summary(console, results, files)
    failed = [r.check for r in results if not r.passed]
    if failed:
        raise CheckFailed(f"not ready: {', '.join(failed)} failed", fix=f"see {files['html']}")
    return results
