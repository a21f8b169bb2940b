"""A lab plan: a validated stack + release + image set, resolved before any Docker call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.analyzer.inputs import Preflight
from composer.core.config import Stack, load_stack
from composer.core.design import LabDesign
from composer.core.designer import local_design
from composer.core.errors import UsageError
from composer.core.gpus import AUTO, NONE, GpuRequest, parse_gpus
from composer.core.image_refs import Images, image_refs
from composer.core.release import Release, parse_release, server_version

if TYPE_CHECKING:  # type names only
    from composer.labs.request import BenchRequest

DEFAULT_RELEASE = "24.10"
DEFAULT_IMAGES = "ngc"


@dataclass(frozen=True)
class LabPlan:
    stack: Stack
    release: Release
    image_set: str
    images: Images
    gpus: GpuRequest = AUTO
    pull: str = "missing"  # missing | always | never (lab images are never pulled)
    explicit_models: bool = False  # the server loads only the stack's model and takes load/unload requests (tune)
    release_server: str = ""  # the release's server image in this image set, whatever server.image says
    notes: tuple[str, ...] = ()  # what the plan changed from stack.yaml, said before anything starts

    @property
    def server_base(self) -> str:
        """What the stack's own server image is made FROM: the server image, or, for server.build,
        the release's (server.image then names the build's tag, as compose's image beside build does)."""
        if self.stack.server.own_image.build is not None:
            return self.release_server or self.images.server
        return self.images.server

    @property
    def fetched_images(self) -> list[str]:
        """The images that must be on the engine before anything is made: the server's base and the sdk."""
        return [self.server_base, self.images.sdk]

    def design(
        self,
        project: str,
        gpus: GpuRequest | None = None,
        transport: str = "bind",
        refused: frozenset[str] = frozenset(),
    ) -> LabDesign:
        """The single-host lab, once: ``gpus`` is the request resolved against the engine (auto is
        none until then); ``copy`` for an engine that cannot see this machine's paths; ``refused``:
        advisory ulimits the engine is known to refuse."""
        design = local_design(
            self.stack,
            self.release,
            self.images,
            project,
            gpus=gpus or (self.gpus if self.gpus.mode != "auto" else NONE),
            pull_policy="never" if self.image_set == "lab" else self.pull,
            explicit_models=self.explicit_models,
            refused=refused,
        )
        return design.copied() if transport == "copy" else design

    def render(self, project: str, gpus: GpuRequest | None = None, transport: str = "bind") -> str:
        """The compose file of :meth:`design`."""
        from composer.render.compose import render_lab

        return render_lab(self.design(project, gpus, transport))

    def preflight(self, request: BenchRequest) -> str | None:
        """What `lab`, `tune` and `matrix` check before any container starts, wherever config.pbtxt
        tells the model: the input data fits it, and a decoupled model is not asked for over HTTP.
        Returns a note on what waits for the server (Triton completes the config), if anything."""
        from composer.analyzer.inputs import preflight
        from composer.analyzer.perf_analyzer import refuse_http_if_decoupled

        request.arrivals(self.stack)  # an interval file, a distribution the sweep cannot take: exit 2 now
        checked = preflight(self.stack, request.input_choice())
        if checked.config is not None:
            for protocol in request.protocols or (request.protocol,):
                refuse_http_if_decoupled(self.stack.model, checked.config, protocol)
        return checked.note()

    def check_input_data(self) -> Preflight:
        """Validate the input data against the model's config.pbtxt (no server needed): the --shape
        values a bench would pass, or why that waits for the server (Triton completes the config)."""
        from composer.analyzer.inputs import InputChoice, preflight

        return preflight(self.stack, InputChoice())

    def exposure_warning(self) -> str | None:
        """A sentence when the stack publishes the server beyond this machine's loopback."""
        host = self.stack.server.host
        if host.startswith("127.") or host == "::1":
            return None
        return (
            f"warning: server.host {host} publishes Triton's ports beyond loopback; "
            "anyone who can reach that address can use the server"
        )

    def _profile_export(self) -> str:
        from composer.analyzer.flags import has_option
        from composer.analyzer.identity import planned

        version = planned(str(self.release), self.image_set).version
        return "on" if has_option(version, "--profile-export-file") else f"off (perf_analyzer {version} has none)"

    @staticmethod
    def _load(a: Any) -> str:
        if a.request_intervals:
            return f"the intervals of {a.request_intervals}"
        pattern = f" ({a.request_distribution})" if a.sweep.kind == "request_rate" else ""
        return f"{a.sweep.kind} {a.sweep.argument()}{pattern}"

    def describe(self, config: Mapping[str, Any] | None = None) -> str:
        """What a lab of this plan runs; ``config``: the model's, where config.pbtxt tells it offline
        (a decoupled model is then named with the transport `lab` gives it)."""
        from composer.analyzer.perf_analyzer import is_decoupled

        a = self.stack.analyzer
        protocol = a.protocol
        if config is not None and is_decoupled(config):
            protocol = "grpc with --streaming (the model is decoupled)"
        measurement = (
            f"{a.measurement_requests} requests per window"
            if a.measurement_requests
            else f"{a.measurement_interval_ms} ms windows"
        )
        lines = [
            f"stack      {self.stack.directory}" + ("" if self.stack.file else "  (no stack.yaml: defaults)"),
            f"model      {self.stack.model}  (of {', '.join(self.stack.models)})",
            f"release    {self.release}  (Triton server {server_version(self.release)})",
            f"images     {self.images.server}  +  {self.images.sdk}",
            f"load       {self._load(a)}, {protocol}, {measurement}",
            f"input      {a.input_data}",
            f"profile    per-request export {self._profile_export()}",
        ]
        if a.shared_memory != "none":
            lines.append(f"transport  {a.shared_memory} shared memory (the analyzer shares the server's IPC namespace)")
        warning = self.exposure_warning()
        return "\n".join(lines + ([warning] if warning else []))


def check_lab_release(release: Release, *, field: str = "--images lab") -> None:
    from composer.core.lab_releases import LAB_RECIPES, NO_RECIPE

    if str(release) not in LAB_RECIPES:
        why = NO_RECIPE.get(str(release))
        raise UsageError(
            f"{field}: no lab image for release {release}" + (f" ({why})" if why else ""),
            f"lab images exist for {', '.join(sorted(LAB_RECIPES))}; pick one, or use --images ngc",
        )


def plan_lab(
    stack_dir: Path,
    *,
    release: str | None,
    images: str | None,
    model: str | None = None,
    gpus: str | None = None,
    image_repo: str | None = None,
    pull: str | None = None,
    shared_memory: str | None = None,
) -> LabPlan:
    """Resolve flags (or env) over stack.yaml over defaults; raise before touching Docker."""
    stack = load_stack(stack_dir, model=model)
    if shared_memory is not None:
        stack = replace(stack, analyzer=replace(stack.analyzer, shared_memory=shared_memory))
    notes: tuple[str, ...] = ()
    if stack.analyzer.shared_memory != "none":
        stack, notes = _room_for_regions(stack)
    if release is not None:
        parsed = parse_release(release, field="--release")
    elif stack.release is not None:
        parsed = parse_release(stack.release, field=f"{stack.file}: release")
    else:
        parsed = parse_release(DEFAULT_RELEASE)
    image_set = images or stack.images or DEFAULT_IMAGES
    if image_set == "lab":
        check_lab_release(parsed, field="--images lab" if images else f"{stack.file}: images: lab")
    if gpus is not None:
        gpu_request = parse_gpus(gpus)
    else:
        gpu_request = parse_gpus(stack.server.gpus, field=f"{stack.file}: server.gpus")
    if stack.analyzer.shared_memory == "cuda" and gpu_request.mode in ("none", "auto"):
        field = "--shared-memory cuda" if shared_memory else f"{stack.file}: analyzer.shared_memory: cuda"
        raise UsageError(
            f"{field}: CUDA shared memory needs a GPU given to the server",
            "add --gpus all (or server.gpus), or use --shared-memory system",
        )
    images_run, release_server = _images(stack, parsed, image_set, image_repo)
    return LabPlan(
        stack,
        parsed,
        image_set,
        images_run,
        gpu_request,
        _pull(stack, pull),
        release_server=release_server,
        notes=notes,
    )


_REGION_SLACK = 64 << 20  # room for the output regions, whose sizes only the server's answers tell


def _room_for_regions(stack: Stack) -> tuple[Stack, tuple[str, ...]]:
    """Shared memory's regions live in the server's /dev/shm: server.shm_size raised, and said, when
    the input data could outgrow it. Each JSON character of the data makes at most 4 bytes of region
    (an 8-byte value takes two characters, "1,"); the outputs get 64 MiB beyond that; the exact need
    is checked once the server answers (composer.labs.shared_memory)."""
    from composer.core.designer import size_in_bytes

    data = stack.directory / stack.analyzer.input_data
    size = data.stat().st_size if data.is_file() else 0
    needed = 4 * size + _REGION_SLACK
    if needed <= size_in_bytes(stack.server.shm_size):
        return stack, ()
    raised = f"{-(-needed // (1 << 20))}m"
    note = (
        f"server.shm_size raised from {stack.server.shm_size} to {raised} for shared memory: "
        f"{stack.analyzer.input_data} ({size:,} bytes) may take up to {4 * size:,} bytes of regions"
    )
    return replace(stack, server=replace(stack.server, shm_size=raised)), (note,)


def _pull(stack: Stack, flag: str | None) -> str:
    from composer.engine.pull import DEFAULT_POLICY, POLICIES

    if flag is not None and flag not in POLICIES:
        raise UsageError(f"--pull {flag!r}: not a pull policy", f"use one of {', '.join(POLICIES)}")
    return flag or stack.pull or DEFAULT_POLICY


def _images(stack: Stack, release: Release, image_set: str, image_repo: str | None) -> tuple[Images, str]:
    """Which references the lab runs (a flag's repository over stack.yaml's; exact references win),
    and the release's server in that repository, which a server.build starts FROM."""
    from composer.core.stack_fields import parse_image_repo

    repo = parse_image_repo(image_repo) if image_repo is not None else stack.image_repo
    if image_set == "lab" and image_repo is not None:
        raise UsageError(
            "--image-repo names registry images, but the image set is lab (built here, never pulled)",
            "use --images ngc with it, or drop it to run the lab images (server.image names an image built here)",
        )
    release_server = image_refs(release, image_set, repo).server
    return image_refs(release, image_set, repo, stack.server.image, stack.analyzer.image), release_server
