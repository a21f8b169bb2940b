"""Commands that make, inspect and remove labs: init, render, check, up, down, status, logs, images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from composer.cli.options import (
    STACK_DIR,
    docker_host_option,
    emit,
    engine_choice,
    engine_options,
    gpus_option,
    images_option,
    kube_choice,
    load_plan,
    release_option,
    say,
    shared_memory_option,
    strongest_memory,
    where_labs_run,
)
from composer.core.errors import UsageError


@click.command()
@STACK_DIR
@release_option
@images_option
@click.option("--name", help="Compose project name written into the file. Default: the stack's name.")
@click.option("-m", "--model", help="Model the lab serves for benchmarking (overrides stack.yaml).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@gpus_option
@shared_memory_option
@engine_options
def render(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    name: str | None,
    model: str | None,
    output: Path | None,
    gpus: str | None,
    shared_memory: str | None,
    engine: str | None,
    clients: int | None,
    kube_context: str | None,
    namespace: str | None,
) -> None:
    """Print the lab's docker-compose.yml (server + sdk analyzer on tis_net).

    The file is what `tisbench up` builds; `docker compose -f FILE up -d` builds the same lab.
    With --engine swarm it is the stack file (deploy: sections) for `docker stack deploy`.
    With --engine kubernetes it is the manifests (Namespace, Deployment, Service, analyzer Pods)
    for `kubectl apply -f`; no cluster is asked.
    """
    from composer.core.names import parse_lab_name

    plan = load_plan(stack_dir, release, images, model, gpus, strongest_memory(shared_memory))
    for said in plan.notes:
        say(said)
    project = parse_lab_name(name) if name else plan.stack.name
    chosen_engine, chosen_clients = engine_choice(plan, engine, clients)
    kube_choice(chosen_engine, kube_context, namespace)
    if chosen_engine == "swarm":
        from composer.labs.request import BenchRequest
        from composer.labs.swarm import render_swarm_file

        text = render_swarm_file(plan, project, chosen_clients, BenchRequest()).text
    elif chosen_engine == "kubernetes":
        from composer.labs.kube import render_kube_file
        from composer.labs.request import BenchRequest

        text = render_kube_file(plan, project, chosen_clients, BenchRequest(), namespace).text
    else:
        from composer.engine.refusals import known_here
        from composer.render.compose import render_lab

        # advice this engine refused before is left out, as `tisbench up` leaves it out
        text = render_lab(plan.design(project, refused=known_here()))
    emit(text, output)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Write the quickstart stack into DIRECTORY, which must be new or empty.

    The seed model (a CPU python model), its input data and stack.yaml: the stack `make lab`
    runs, shipped with tisbench. Then: tisbench lab DIRECTORY.
    """
    from composer.core.shipped import write_quickstart

    write_quickstart(directory)
    say(f"wrote the quickstart stack to {directory}; run it with: tisbench lab {directory}")


@click.command()
@STACK_DIR
@release_option
@images_option
@click.option("-m", "--model", help="Model to benchmark (overrides stack.yaml).")
def check(stack_dir: Path, release: str | None, images: str | None, model: str | None) -> None:
    """Validate the stack directory, stack.yaml, release and input data, without Docker.

    The input data is checked against the model's config.pbtxt, and the --shape values a bench
    would pass are shown. A model whose configuration Triton completes at load (no config.pbtxt,
    an empty one, or a python model's auto_complete_config) is checked by lab and bench instead,
    against the configuration the server serves; check says so.
    """
    plan = load_plan(stack_dir, release, images, model)
    checked = plan.check_input_data()
    click.echo(plan.describe(checked.config))
    if checked.shapes is None:
        click.echo(f"config     {checked.deferred}: Triton completes it at load")
        click.echo("shapes     not checked offline: lab and bench check the input data against the served config")
        return
    shown = " ".join(f"{name}:{','.join(str(d) for d in dims)}" for name, dims in checked.shapes.items())
    click.echo(f"shapes     {shown or 'none needed'}")


@click.command()
@STACK_DIR
@release_option
@images_option
@click.option("--name", help="Lab name (compose project). Default: <stack name>-<4 hex>, unique.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds to wait for the server and model to be ready.")
@click.option("-m", "--model", help="Model to wait for (overrides stack.yaml).")
@gpus_option
@docker_host_option
def up(
    stack_dir: Path,
    release: str | None,
    images: str | None,
    name: str | None,
    timeout: float | None,
    model: str | None,
    gpus: str | None,
) -> None:
    """Start a lab and return once Triton and the model are ready.

    Renders docker-compose.yml into STACK_DIR/.tisbench/NAME/, creates network NAME_tis_net and
    containers NAME-triton_server-1 and NAME-perf_analyzer-1 with the docker SDK (labelled so
    `docker compose -p NAME ps|logs|down` work), then waits. A model that fails to load stops
    the wait at once with Triton's reason. Prints the lab name on stdout.
    """
    from composer.core.names import parse_lab_name
    from composer.labs import local

    plan = load_plan(stack_dir, release, images, model, gpus)
    running = local.up(plan, name=parse_lab_name(name) if name else None, timeout_s=timeout, say=say)
    click.echo(running.name)


@click.command()
@click.argument("name", required=False)
@click.option("--all", "all_labs", is_flag=True, help="Remove every tisbench lab on this engine (nothing else).")
@where_labs_run
@docker_host_option
def down(name: str | None, all_labs: bool, engine_name: str, kube_context: str | None) -> None:
    """Remove a lab's containers, network and run area. Safe to repeat: a half-removed lab is
    cleaned, an absent one is nothing to do (exit 0). With --engine kubernetes: the lab's
    namespace and everything in it."""
    from composer.labs import registry as labs

    if all_labs == bool(name):
        raise UsageError("down takes a lab NAME or --all", "see tisbench status for lab names")
    if engine_name == "kubernetes":
        from composer.labs import kube_registry

        gone = kube_registry.down(name, kube_context)
        say(f"removed {len(gone)} kubernetes lab(s){': ' + ', '.join(gone) if gone else ''}")
        return
    if all_labs:
        removed = labs.down_all()
        say(f"removed {len(removed)} lab(s){': ' + ', '.join(removed) if removed else ''}")
    else:
        assert name is not None
        if labs.down(name):
            say(f"removed lab {name}")
        else:
            say(f"nothing to do: no lab named {name} on this engine")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@where_labs_run
@docker_host_option
def status(as_json: bool, engine_name: str, kube_context: str | None) -> None:
    """List every tisbench lab on this engine: release, model, services, host ports, age.
    With --engine kubernetes: the labs on the cluster KUBECONFIG names, found by label."""
    import json

    from composer.labs import registry as labs

    if engine_name == "kubernetes":
        from composer.labs import kube_registry

        found = kube_registry.status(kube_context)
    else:
        found = labs.status()
    if as_json:
        click.echo(json.dumps([lab.as_dict() for lab in found], indent=2))
        return
    if not found:
        click.echo("no tisbench labs running")
        return
    from composer.cli.console import table

    rows = []
    for lab in found:
        state = ", ".join(f"{k}={v}" for k, v in sorted(lab.services.items())) or "-"
        note = "ORPHANED (owner gone)" if lab.orphaned else (lab.problem or "")
        ports = " ".join(f"{k}:{v}" for k, v in lab.ports.items())
        rows.append([lab.name, lab.release, lab.model, state, ports, f"{lab.age_s:.0f}s", note])
    table(["lab", "release", "model", "services", "ports (127.0.0.1)", "age", "note"], rows)


@click.command()
@click.argument("name")
@click.option(
    "--service", type=click.Choice(["triton_server", "perf_analyzer"]), default="triton_server", show_default=True
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@where_labs_run
@docker_host_option
def logs(name: str, service: str, follow: bool, engine_name: str, kube_context: str | None) -> None:
    """Print a lab service's log."""
    if engine_name == "kubernetes":
        from composer.labs import kube_registry

        click.echo(kube_registry.logs(name, service, kube_context), nl=False)
        return
    from composer.engine import containers as engine
    from composer.labs import registry as labs

    client = engine.connect()
    if _print_swarm_logs(client, name, service):
        return
    container = engine.find_service(labs.find_lab(client, name), service)
    if container is None:
        raise UsageError(f"lab {name} has no {service} container", "it was removed; tisbench down NAME cleans the rest")
    if follow:
        for chunk in engine.follow_logs(client, container.id):
            click.echo(chunk.decode("utf-8", errors="replace"), nl=False)
    else:
        click.echo(engine.container_logs(client, container.id), nl=False)


def _print_swarm_logs(client: Any, name: str, service: str) -> bool:
    """A swarm lab's service log, task by task; False when NAME is not a swarm lab."""
    from composer.engine import swarm

    services = [s for s in swarm.lab_services(client, name) if s["Spec"]["Name"].endswith(f"_{service}")]
    if not services:
        return False
    for task, text in swarm.task_logs(client, services[0]["ID"]).items():
        click.echo(f"--- task {task}")
        click.echo(text, nl=False)
    return True


@click.group()
@docker_host_option
def images() -> None:
    """Build and list the CPU-only lab images (tisbench-lab/tritonserver:<R>-py3[-sdk]), and the
    server images made for stacks (server.requirements, server.build)."""


@images.command("build")
@click.option(
    "--release", "releases", multiple=True, metavar="YY.MM", help="Release to build (repeatable). Default: 24.10."
)
@click.option("--all", "all_releases", is_flag=True, help="Build every release that has a lab recipe.")
@click.option("--force", is_flag=True, help="Rebuild even when both tags exist and are current.")
@docker_host_option
def images_build(releases: tuple[str, ...], all_releases: bool, force: bool) -> None:
    """Build lab images from PyPI wheels and Debian minbase roots (needs root and debootstrap).

    Each release gets its own tritonserver and its own perf_analyzer. A release is skipped when
    both tags exist and were built by today's recipe; a tag built by another recipe is rebuilt.
    """
    from composer.core.lab_releases import LAB_RECIPES, NO_RECIPE
    from composer.core.release import parse_release
    from composer.engine import containers as engine
    from composer.images.build import build_lab_images

    chosen = sorted(LAB_RECIPES) if all_releases else [str(parse_release(r)) for r in releases] or ["24.10"]
    for r in chosen:
        if r not in LAB_RECIPES:
            why = f" ({NO_RECIPE[r]})" if r in NO_RECIPE else ""
            raise UsageError(f"--release {r}: no lab recipe{why}", f"lab releases: {', '.join(sorted(LAB_RECIPES))}")
    client = engine.connect(timeout_s=600)
    for tag in build_lab_images(client, chosen, force=force, progress=say):
        click.echo(tag)


@images.command("pull")
@STACK_DIR
@release_option
@click.option("--quiet", "-q", is_flag=True, help="One line per image instead of progress bars.")
@images_option
@docker_host_option
def images_pull(stack_dir: Path, release: str | None, quiet: bool, images: str | None) -> None:
    """Pull the server and sdk images a lab of STACK_DIR would run, with progress.

    References follow NGC's tags <release>-py3 and <release>-py3-sdk under --image-repo (default
    nvcr.io/nvidia/tritonserver), or stack.yaml's exact server.image / analyzer.image. The
    engine's stored credentials are used, as docker pull does (docker login first where needed).
    """
    from composer.engine import containers as engine
    from composer.engine.pull import ensure_images
    from composer.labs.pull_view import PullView

    plan = load_plan(stack_dir, release, images)
    if plan.image_set == "lab":
        raise UsageError("lab images are built here, not pulled", "tisbench images build, or use --images ngc")
    client = engine.connect(timeout_s=600)
    refs = [plan.images.server, plan.images.sdk]
    with PullView(say, quiet=True if quiet else None) as view:
        ensure_images(client, refs, policy="always", image_set=plan.image_set, progress=view)
    for ref in refs:
        click.echo(ref)


@images.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@docker_host_option
def images_list(as_json: bool) -> None:
    """Every lab release: the server and perf_analyzer its recipe provides, and its images here.

    A built image shows the versions its binaries reported at build time (its labels); one
    built by another recipe is marked stale: tisbench images build rebuilds it.
    """
    import json

    from composer.core.lab_releases import LAB_RECIPES
    from composer.engine import containers as engine
    from composer.engine.images import image_labels
    from composer.images.derived import derived_images
    from composer.images.lab_images import image_specs, listing

    client = engine.connect()
    rows = [
        listing(release, [image_labels(client, spec.tag) for spec in image_specs(release)])
        for release in sorted(LAB_RECIPES)
    ]
    derived = derived_images(client)
    if as_json:
        click.echo(json.dumps(rows + [{"derived": row} for row in derived], indent=2))
        return
    from composer.cli.console import table

    table(
        ["release", "server (recipe)", "perf_analyzer (recipe)", "server image", "sdk image"],
        [
            [
                r["release"],
                r["server"]["recipe"],
                r["perf_analyzer"]["recipe"],
                r["server"]["image"],
                r["perf_analyzer"]["image"],
            ]
            for r in rows
        ],
    )
    stale = [r["release"] for r in rows if "stale" in (r["server"]["state"], r["perf_analyzer"]["state"])]
    if stale:
        say(f"stale images were built by another recipe: tisbench images build --release {' --release '.join(stale)}")
    if derived:
        table(
            ["server image made for a stack", "from", "made with", "stack"],
            [[row["tag"], row["base"], row["kind"], row["stack"]] for row in derived],
        )


@images.command("rm")
@click.argument("tags", nargs=-1)
@click.option("--all", "all_derived", is_flag=True, help="Every server image tisbench made for a stack here.")
@docker_host_option
def images_rm(tags: tuple[str, ...], all_derived: bool) -> None:
    """Remove server images tisbench made for stacks (server.requirements, server.build), by TAG or
    --all. Lab images, NGC images and any other image are never touched."""
    from composer.engine import containers as engine
    from composer.images.derived import derived_images, remove_derived

    if all_derived == bool(tags):
        raise UsageError("images rm takes TAG… or --all", "see tisbench images list for the images tisbench made")
    client = engine.connect()
    for tag in [row["tag"] for row in derived_images(client)] if all_derived else list(tags):
        if not remove_derived(client, tag):
            raise UsageError(
                f"{tag}: not a server image tisbench made for a stack (or in use by a container)",
                "tisbench images list shows them; other images are docker image rm's",
            )
        say(f"removed {tag}")
COMMANDS = (init, render, check, up, down, status, logs, images)
