"""`dlworkshop init` and `dlworkshop check`: write and validate workshop.yaml."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dlworkshop import contract
from dlworkshop.cli import app
from dlworkshop.errors import WorkshopError
from dlworkshop.settings import DEFAULT_CONFIG_NAME, Settings, SlurmNode, load_settings
from dlworkshop.templates import example_config

console = Console(soft_wrap=True)

ConfigOption = typer.Option(None, "--config", "-c", help="workshop.yaml to read (default: ./workshop.yaml).")


@app.command()
def init(
    path: Path = typer.Argument(Path(DEFAULT_CONFIG_NAME), help="Where to write the example."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented example workshop.yaml to edit."""
    if path.exists() and not force:
        raise WorkshopError(f"{path} already exists", fix="edit it, or pass --force to overwrite it")
    from dlworkshop.settings import parse_settings

    text = example_config()
    learners = parse_settings(text).learners.total
    path.write_text(text, encoding="utf-8")
    console.print(
        f"Wrote {path}, sized for this machine ({learners} learners at once; its header says how to plan "
        f"for another). Edit it, then run `dlworkshop check -c {path}`."
    )


@app.command()
def check(
    config: Path | None = ConfigOption,
    host_cpus: float | None = typer.Option(
        None, "--host-cpus", help="Plan for a machine with this many CPUs."
    ),
    host_memory: str | None = typer.Option(None, "--host-memory", help="... this much memory (e.g. 256G)."),
    host_gpus: int | None = typer.Option(None, "--host-gpus", help="... this many GPUs."),
    node_count: int | None = typer.Option(
        None, "--node-count", help="hub.backend slurm: plan for this many nodes (instead of slurm.nodes)."
    ),
    node_cpus: int = typer.Option(32, "--node-cpus", help="... each with this many CPUs."),
    node_memory: str = typer.Option("256G", "--node-memory", help="... this much memory for jobs."),
    node_gpus: int = typer.Option(0, "--node-gpus", help="... this many GPUs."),
) -> None:
    """Validate workshop.yaml and what blocks a start on this machine (or the one planned for);
    print every problem at once. `dlworkshop up` refuses on exactly these problems."""
    import contextlib

    from dlworkshop.capacity import HostFacts
    from dlworkshop.local.local_hub import port_free
    from dlworkshop.local.preflight import check_start
    from dlworkshop.settings import parse_bytes

    settings = load_settings(config)
    if settings.hub.backend != "docker":
        # On Docker the preflight below decides it with everything else.
        from dlworkshop.needs import refuse_if_cannot_teach

        refuse_if_cannot_teach(settings)
    if settings.hub.backend == "slurm":
        nodes = list(settings.slurm.nodes)
        if node_count is not None:
            nodes = [
                SlurmNode(
                    name="planned",
                    count=node_count,
                    cpus=node_cpus,
                    memory=parse_bytes(node_memory),
                    gpus=node_gpus,
                )
            ]
        _check_slurm(settings, nodes)
        _print_site_config(settings)
        return
    if settings.hub.backend == "kubernetes":
        console.print(
            "capacity: not checked: on Kubernetes the cluster's nodes carry the learners, not this "
            "machine (the scheduler places each pod where its requests fit); `dlworkshop render z2jh` "
            "checks the chart's values"
        )
        console.print(
            f"[green]ok[/]: {settings.workshop.name!r}, {settings.learners.total} learners, "
            f"login {settings.auth.mode}, image {settings.image.reference} ({settings.image.variant}); "
            "on Kubernetes: `dlworkshop render z2jh` writes the chart's values"
        )
        return
    detected = HostFacts.detect()
    host = HostFacts(
        cpus=host_cpus if host_cpus is not None else detected.cpus,
        memory=parse_bytes(host_memory) if host_memory else detected.memory,
        gpus=host_gpus if host_gpus is not None else detected.gpus,
    )
    planned = host != detected
    port_taken, live_restore = False, None
    # The port and the engine are this machine's (a plan for another machine cannot know them).
    if not planned:
        from dlworkshop.image.docker import docker_client
        from dlworkshop.local.local_hub import engine_live_restore, hub_port_taken

        client = None
        with contextlib.suppress(WorkshopError):
            client = docker_client()
        live_restore = engine_live_restore(client)
        # In use by this hub (which `up` re-creates), or by something else.
        if not port_free(settings.hub.bind, settings.hub.port):
            port_taken = hub_port_taken(settings, client)
    start = check_start(
        settings, host, port_taken=port_taken, this_machine=not planned, live_restore=live_restore
    )
    report = start.capacity
    table = Table("resource", f"needed ({report.servers})", "host has", "fits")
    for demand in report.demands:
        fits = (
            "yes" if demand.fits else "[yellow]shared by time[/]" if demand.shared_by_time else "[red]no[/]"
        )
        table.add_row(demand.resource, demand.shown_needed, demand.shown_available, fits)
    console.print(table)
    _print_sizing(settings, host.cpus, report.concurrent)
    console.print(f"logs: {_log_cap(settings)}", highlight=False)
    for warning in start.warnings:
        console.print(f"[yellow]warning[/]: {warning}")
    start.raise_if_blocked("the machine planned for" if planned else "this machine")
    _print_site_config(settings)
    console.print(
        f"[green]ok[/]: {settings.workshop.name!r}, {settings.learners.total} learners, "
        f"login {settings.auth.mode}, image {settings.image.reference} ({settings.image.variant}); "
        f"this host carries {report.carries} learners at once and starts {report.start_capacity} "
        "servers at a time"
    )


def _print_site_config(settings: Settings) -> None:
    """The site's own JupyterHub files (hub.extra_config), in the order the hub loads them after
    ours: what a site setting that seems ignored is checked against first."""
    folder = settings.hub.extra_config
    if folder is None:
        console.print("site configuration: none (hub.extra_config names a jupyterhub_config.d folder)")
        return
    names = ", ".join(path.name for path in contract.site_config_files(folder))
    console.print(f"site configuration: {folder}, loaded after ours in this order: {names}", highlight=False)


def _print_sizing(settings: Settings, cores: float, learners: int) -> None:
    """Per measured episode: the room training at once on this host's cores, how long one run takes
    then against the episode's budget; and the smallest host on which every episode fits."""
    from dlworkshop.capacity import HUB_OVERHEAD_BYTES
    from dlworkshop.lessons import list_lessons
    from dlworkshop.needs import episode_loads, lesson_needs, smallest_host
    from dlworkshop.settings import format_bytes

    lessons = list_lessons()
    needs = lesson_needs(lessons)
    if not needs:
        return
    sizes = {need.episode: need.size for need in needs}
    budgets = {
        lesson.name: lesson.budget_for("cpu", "full" if sizes[lesson.name] == "full" else "smoke")
        for lesson in lessons
        if lesson.name in sizes
    }
    measured_at = " and ".join(sorted(set(sizes.values())))
    table = Table(
        "episode",
        "memory",
        "CPU-s",
        f"run, {learners} at once",
        "budget",
        "fits",
        title=f"the lesson on {cores:g} cores (figures measured at {measured_at} size)",
    )
    by_name = {need.episode: need for need in needs}
    alternatives = [
        f"{need.episode} instead of {need.alternative_to}" for need in needs if need.alternative_to
    ]
    if alternatives:
        table.caption = f"* taught instead of another episode: {'; '.join(alternatives)}"
    for load in episode_loads(needs, budgets, learners, cores, settings.resources.cpu):
        instead = by_name[load.episode].alternative_to
        table.add_row(
            f"{load.episode} *" if instead else load.episode,
            format_bytes(by_name[load.episode].quota_bytes),
            f"{load.cpu_seconds:g}",
            f"{load.seconds:.0f} s",
            f"{load.budget:g} s",
            "yes" if load.fits else "[red]no[/]",
        )
    console.print(table)
    host_cores, host_memory = smallest_host(needs, budgets, learners, HUB_OVERHEAD_BYTES)
    console.print(
        f"smallest host for {learners} learners with every episode within budget (CPU, measured "
        f"figures): {host_cores} cores and {format_bytes(host_memory)}"
        + (" (alternative episodes not counted)" if any(need.alternative_to for need in needs) else "")
    )


def _print_slurm_limits(settings: Settings) -> None:
    """What each learner may hold (the deploy sets it), and what the site's slurm.conf must say
    (`dlworkshop verify` checks both)."""
    from dlworkshop.slurm.limits import job_container_conf, learner_limits, slurm_conf_lines

    limits = learner_limits(settings)
    if settings.slurm.account:
        console.print(
            f"each learner's association in account {settings.slurm.account} (the deploy sets it): "
            f"at most {limits.describe()} (sacctmgr: {' '.join(limits.sacctmgr_set())})",
            highlight=False,
        )
    else:
        console.print(
            "[yellow]note[/]: without slurm.account (slurmdbd) nothing holds a learner to "
            f"{limits.describe()}: set it so the deploy can limit each learner's association",
            highlight=False,
        )
    console.print(
        "the site's slurm.conf gives each job a private /tmp and hides others' jobs: "
        + " ".join(slurm_conf_lines())
        + "; job_container.conf on every node: "
        + job_container_conf().replace("\n", " ").strip(),
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"logs: {_log_cap(settings)}", highlight=False)


def _log_cap(settings: Settings) -> str:
    from dlworkshop import contract
    from dlworkshop.settings import format_bytes

    cap = settings.resources.log_max
    if settings.hub.backend == "slurm":
        return f"a learner's job keeps at most {format_bytes(cap)} of its server's output in its log file"
    return (
        f"each learner's container and the hub's keep at most {format_bytes(cap)} of output "
        f"({contract.LOG_FILES} rotated files of {format_bytes(cap // contract.LOG_FILES)})"
    )


def _check_slurm(settings: Settings, nodes: list[SlurmNode]) -> None:
    """hub.backend slurm: the partition's nodes (given by hand) against the job request, and the
    reservation line for the workshop's hours."""
    from dlworkshop.errors import ConfigError
    from dlworkshop.settings import format_bytes
    from dlworkshop.slurm.jobs import account_names, job_request
    from dlworkshop.slurm.planning import cluster_capacity, reservation_command

    request = job_request(settings)
    plan = cluster_capacity(settings, nodes)
    console.print(f"each learner's job: sbatch {' '.join(request.sbatch_options())}", highlight=False)
    _print_slurm_limits(settings)
    if plan.nodes:
        table = Table("node", "nodes", "CPUs", "memory", "GPUs", "learners each", "limited by")
        for row in plan.nodes:
            node = row.node
            table.add_row(
                node.name,
                str(node.count),
                str(node.cpus),
                format_bytes(node.memory),
                str(node.gpus),
                str(row.learners_each),
                row.limited_by,
            )
        console.print(table)
    for note in plan.notes:
        console.print(f"[yellow]note[/]: {note}", highlight=False)
    if plan.problems:
        raise ConfigError(
            f"the quotas do not fit the partition ({len(plan.problems)} problem(s))",
            problems=plan.problems,
            fix="see each problem; --node-count/--node-cpus/--node-memory/--node-gpus check another plan",
        )
    reservation = reservation_command(settings, nodes)
    if reservation:
        console.print("the site's admin creates the reservation (as a Slurm operator):", highlight=False)
        console.print(f"  {reservation}", highlight=False, soft_wrap=True)
        if not settings.slurm.reservation:
            console.print(
                "[yellow]note[/]: set slurm.reservation to its name so learners' jobs run in it",
                highlight=False,
            )
    elif settings.slurm.reservation:
        console.print(
            "[yellow]note[/]: set workshop.start and workshop.end to print the reservation's line",
            highlight=False,
        )
    accounts = account_names(settings)
    carried = f"the nodes carry {plan.carries} learners at once" if plan.nodes else "nodes not given"
    console.print(
        f"[green]ok[/]: {settings.workshop.name!r}, {settings.learners.total} learners, "
        f"login {settings.auth.mode}, Slurm partition {settings.slurm.partition or '(default)'}, "
        f"accounts {accounts[0]}..{accounts[-1]}; {carried}",
        highlight=False,
    )
