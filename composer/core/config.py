"""Stack directory → frozen dataclasses, every field validated with a message naming it.

A stack directory holds ``models/`` (a Triton model repository), ``dataset/`` (perf_analyzer
input data) and an optional ``stack.yaml``. Pure filesystem logic: no Docker here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.core import arrivals, server_image
from composer.core import stack_fields as sf
from composer.core.design import ServiceOptions
from composer.core.errors import ConfigError
from composer.core.names import default_stack_name, parse_lab_name
from composer.core.sweep import Sweep, parse_sweep
from composer.core.tune_keys import TUNE_KEYS

STACK_FILE = "stack.yaml"
IMAGE_SETS = ("ngc", "lab")
PULL_POLICIES = ("missing", "always", "never")
PROTOCOLS = ("http", "grpc")
ENGINES = ("local", "swarm", "kubernetes")
_MAX_REQUESTS = 10_000_000
SHARED_MEMORY = ("none", "system", "cuda")
_MAX_STABILITY_RETRIES = 8  # each retry doubles the window: 8 make it 256 times as long



@dataclass(frozen=True)
class ServerOptions:
    args: tuple[str, ...] = ()
    shm_size: str = "1g"
    host: str = "127.0.0.1"
    http_port: int = 0  # 0: an ephemeral host port, so labs never collide
    grpc_port: int = 0
    metrics_port: int = 0
    ready_timeout_s: float = 120.0
    # NGC's recommendation, asked for as advice: an engine that refuses one of these defaults
    # (sandboxed, rootless: no memlock -1) gets the lab without it. A stack may lower or drop (null) one.
    ulimits: tuple[tuple[str, int], ...] = (("memlock", -1), ("stack", 67108864))
    ulimits_set: tuple[str, ...] = ()  # the names stack.yaml sets itself: never dropped silently
    gpus: str | None = None  # auto | none | all | N | device=ID,… (parsed by composer.core.gpus)
    image: str | None = None  # an exact server image reference, instead of <image_repo>:<release>-py3
    options: ServiceOptions = ServiceOptions()  # what either service may set (environment, …)
    own_image: server_image.ServerImage = server_image.ServerImage()  # requirements or a build on the server image


@dataclass(frozen=True)
class AnalyzerOptions:
    input_data: str = "dataset/input.json"
    sweep: Sweep = Sweep("concurrency", 1, 1, 1)
    protocol: str = "http"
    measurement_requests: int | None = 200
    measurement_interval_ms: int | None = None
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    args: tuple[str, ...] = ()
    timeout_s: float = 600.0
    image: str | None = None  # an exact sdk image reference, instead of <image_repo>:<release>-py3-sdk
    stability_retries: int = 3  # reruns of a point perf_analyzer found unstable, each with a window twice as long
    options: ServiceOptions = ServiceOptions()  # what either service may set (environment, …)
    sweep_set: bool = False  # stack.yaml names concurrency or request_rate itself
    request_distribution: str = "constant"  # constant | poisson (request-rate sweeps)
    request_intervals: str | None = None  # a file under dataset/ of µs between requests, instead of a sweep
    shared_memory: str = "none"  # none | system | cuda: tensors through shared memory, not the socket


@dataclass(frozen=True)
class Stack:
    directory: Path
    file: Path | None
    name: str
    model: str
    models: tuple[str, ...]
    release: str | None
    images: str | None
    server: ServerOptions
    analyzer: AnalyzerOptions
    engine: str | None = None  # local | swarm | kubernetes
    clients: int | None = None  # perf_analyzer replicas (swarm, kubernetes)
    pull: str | None = None  # missing | always | never
    image_repo: str | None = None  # a registry mirror of nvcr.io/nvidia/tritonserver
    tune: tuple[tuple[str, Any], ...] = ()  # the `tune:` section as written; composer.tuning.space reads it

    @property
    def models_dir(self) -> Path:
        return self.directory / "models"

    @property
    def dataset_dir(self) -> Path:
        return self.directory / "dataset"

    @property
    def input_data_path(self) -> Path:
        return self.directory / self.analyzer.input_data


_ULIMIT_NAMES = (
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)


def _ulimits(value: Any, fields: sf.Fields) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Merge stack.yaml's ulimits over the defaults; ``null`` drops one (the engine's default applies).
    Also the names stack.yaml sets to a value: those are the user's, the rest are advice."""
    merged = dict(ServerOptions.ulimits)
    if value is None:
        return tuple(merged.items()), ()
    limits = fields.section("ulimits", _ULIMIT_NAMES)
    chosen = []
    for name in limits.data:
        if limits.data[name] is None:
            merged.pop(name, None)
        else:
            merged[name] = limits.get(
                name, 0, sf.int_in(-1, 2**62), "a number, -1 for unlimited, or null to leave it unset"
            )
            chosen.append(name)
    return tuple(merged.items()), tuple(chosen)


def find_models(models_dir: Path) -> tuple[str, ...]:
    """Names of the models in a Triton model repository (directories, hidden ones skipped)."""
    if not models_dir.is_dir():
        raise ConfigError(
            f"{models_dir}: no model repository",
            "a stack directory needs models/<model>/config.pbtxt "
            "(run tisbench from the stack directory or pass STACK_DIR)",
        )
    names = tuple(sorted(p.name for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not names:
        raise ConfigError(f"{models_dir}: holds no model", "add models/<model>/config.pbtxt and a version directory")
    return names


def _choose_model(models: tuple[str, ...], chosen: str | None, models_dir: Path, field: str) -> str:
    if chosen is None:
        if len(models) > 1:
            raise ConfigError(
                f"{models_dir}: holds {len(models)} models ({', '.join(models)}) and none is chosen",
                "set model: NAME in stack.yaml or pass -m NAME",
            )
        chosen = models[0]
    if chosen not in models:
        close = difflib.get_close_matches(chosen, models, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"models present: {', '.join(models)}"
        raise ConfigError(f"{field}: {chosen!r} is not in {models_dir}", hint)
    model_dir = models_dir / chosen
    if not (model_dir / "config.pbtxt").is_file() and not any(p.name.isdigit() for p in model_dir.iterdir()):
        raise ConfigError(
            f"{model_dir}: no config.pbtxt and no version directory",
            "Triton loads models/<model>/<version>/ (e.g. 1/model.py), with an optional config.pbtxt beside it",
        )
    return chosen


def load_stack(directory: Path, *, model: str | None = None) -> Stack:
    """Load and validate a stack directory; ``model`` (from -m) overrides stack.yaml."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory", "pass a stack directory holding models/ and dataset/")
    file = directory / STACK_FILE
    data: Mapping[str, Any] = sf.read_yaml(file) if file.exists() else {}
    source = str(file)
    top = sf.Fields(
        source,
        "",
        data,
        ("name", "release", "images", "pull", "image_repo", "model", "engine", "clients", "server", "analyzer", "tune"),
    )
    name = top.get(
        "name", default_stack_name(directory), lambda v: parse_lab_name(v, f"{source}: name"), "e.g. name: mylab"
    )
    release = None if data.get("release") is None else data["release"]
    if isinstance(release, float):
        raise top.fail(
            "release", f"{release!r} is a number", 'quote it ("24.10"): unquoted 24.10 reads as the number 24.1'
        )
    if release is not None:
        release = str(release)
    images = top.get("images", None, lambda v: sf.choice(v, IMAGE_SETS), "images: ngc or images: lab")
    chosen = model or top.get("model", None, sf.string, "model: NAME of a directory in models/")

    server = _server_options(top, source, directory)
    analyzer = _analyzer_options(top, source, directory)

    models = find_models(directory / "models")
    chosen = _choose_model(models, chosen, directory / "models", f"{source}: model" if model is None else "-m")
    engine = top.get("engine", None, lambda v: sf.choice(v, ENGINES), "engine: local, swarm or kubernetes")
    clients = top.get("clients", None, sf.int_in(1, 256), "a number of load clients, 1 to 256")
    pull = top.get("pull", None, lambda v: sf.choice(v, PULL_POLICIES), "pull: missing, always or never")
    image_repo = top.get(
        "image_repo",
        None,
        lambda v: sf.parse_image_repo(v, f"{source}: image_repo"),
        "e.g. image_repo: registry.example.com/nvidia/tritonserver",
    )
    return Stack(
        directory.resolve(),
        file if file.exists() else None,
        name,
        chosen,
        models,
        release,
        images,
        server,
        analyzer,
        engine,
        clients,
        pull,
        image_repo,
        tuple(top.section("tune", TUNE_KEYS).data.items()),  # values are checked by composer.tuning.space
    )


def _server_options(top: sf.Fields, source: str, directory: Path) -> ServerOptions:
    """stack.yaml's server: section."""
    srv = top.section(
        "server",
        ("args", "shm_size", "host", "ports", "ready_timeout", "ulimits", "gpus", "image", *ServiceOptions.KEYS,
         *server_image.KEYS),  # fmt: skip
    )
    ports = srv.section("ports", ("http", "grpc", "metrics"))
    port = sf.int_in(0, 65535)
    port_hint = "a port 1-65535, or 0 for an ephemeral one"
    ulimits, ulimits_set = _ulimits(srv.data.get("ulimits"), srv)
    server = ServerOptions(
        args=srv.get("args", (), sf.string_list, 'a list such as ["--log-verbose=1"]'),
        shm_size=srv.get("shm_size", "1g", sf.parse_size, "e.g. 1g or 512m"),
        host=srv.get("host", "127.0.0.1", sf.host, "an IP address such as 127.0.0.1"),
        http_port=ports.get("http", 0, port, port_hint),
        grpc_port=ports.get("grpc", 0, port, port_hint),
        metrics_port=ports.get("metrics", 0, port, port_hint),
        ready_timeout_s=srv.get("ready_timeout", 120.0, sf.seconds, "seconds, e.g. 120"),
        ulimits=ulimits,
        ulimits_set=ulimits_set,
        gpus=srv.get("gpus", None, lambda v: str(v), "auto, none, all, a count, or device=0,1"),
        image=srv.get("image", None, sf.image_ref, "e.g. registry.example.com/nvidia/tritonserver:24.10-py3"),
        options=ServiceOptions.read(srv, directory),
        own_image=server_image.read(srv, directory),
    )
    fixed = [p for p in (server.http_port, server.grpc_port, server.metrics_port) if p]
    if len(fixed) != len(set(fixed)):
        raise ConfigError(
            f"{source}: server.ports: the same port is used twice ({fixed})",
            "give http, grpc and metrics different ports",
        )
    return server


def _analyzer_options(top: sf.Fields, source: str, directory: Path) -> AnalyzerOptions:
    """stack.yaml's analyzer: section, its input data checked to exist under dataset/."""
    ana = top.section(
        "analyzer",
        (
            "input_data",
            "concurrency",
            "request_rate",
            "protocol",
            "measurement_requests",
            "measurement_interval",
            "shapes",
            "args",
            "timeout",
            "image",
            "stability_retries",
            "request_distribution",
            "request_intervals",
            "shared_memory",
            *ServiceOptions.KEYS,
        ),
    )
    if ana.data.get("concurrency") is not None and ana.data.get("request_rate") is not None:
        raise ana.fail("concurrency", "and request_rate are both set", "choose one load mode")
    kind = "request_rate" if ana.data.get("request_rate") is not None else "concurrency"
    sweep = ana.get(
        kind,
        Sweep(kind, 1, 1, 1),
        lambda v: parse_sweep(str(v), kind, field=f"{source}: analyzer.{kind}"),
        "A, A:B or A:B:STEP, e.g. 1:4:1",
    )
    interval = ana.get("measurement_interval", None, sf.int_in(100, 3_600_000), "milliseconds, e.g. 5000")
    requests = ana.get("measurement_requests", None, sf.int_in(1, _MAX_REQUESTS), "a request count, e.g. 200")
    if interval is not None and requests is not None:
        raise ana.fail("measurement_interval", "and measurement_requests are both set", "choose one measurement mode")
    analyzer = AnalyzerOptions(
        input_data=ana.get(
            "input_data", "dataset/input.json", sf.string, "a path under dataset/, e.g. dataset/input.json"
        ),
        sweep=sweep,
        protocol=ana.get("protocol", "http", lambda v: sf.choice(v, PROTOCOLS), "http or grpc"),
        measurement_requests=requests if interval is None else None,
        measurement_interval_ms=interval,
        shapes=ana.get("shapes", (), sf.shapes, "e.g. shapes: {age: [1]}"),
        args=ana.get("args", (), sf.string_list, 'a list such as ["--percentile=95"]'),
        timeout_s=ana.get("timeout", 600.0, sf.seconds, "seconds, e.g. 600"),
        image=ana.get("image", None, sf.image_ref, "e.g. registry.example.com/nvidia/tritonserver:24.10-py3-sdk"),
        stability_retries=ana.get(
            "stability_retries", 3, sf.int_in(0, _MAX_STABILITY_RETRIES), f"0 (no retries) to {_MAX_STABILITY_RETRIES}"
        ),
        options=ServiceOptions.read(ana, directory),
        sweep_set=ana.data.get("concurrency") is not None or ana.data.get("request_rate") is not None,
        request_distribution=ana.get(
            "request_distribution", "constant", lambda v: sf.choice(v, arrivals.DISTRIBUTIONS), "constant or poisson"
        ),
        request_intervals=ana.get(
            "request_intervals", None, sf.string, "a file under dataset/, e.g. dataset/intervals.txt"
        ),
        shared_memory=ana.get("shared_memory", "none", lambda v: sf.choice(v, SHARED_MEMORY), "none, system or cuda"),
    )
    if analyzer.request_intervals is not None:  # the file is checked here; the pattern with the command line's sweep
        arrivals.intervals_in(directory / "dataset", directory / analyzer.request_intervals, f"{source}: analyzer.")
    if analyzer.measurement_requests is None and analyzer.measurement_interval_ms is None:
        analyzer = AnalyzerOptions(**{**analyzer.__dict__, "measurement_requests": 200})
    _check_input_data(directory, analyzer.input_data, ana)
    return analyzer


def _check_input_data(directory: Path, relative: str, fields: sf.Fields) -> None:
    dataset = (directory / "dataset").resolve()
    if not dataset.is_dir():
        raise ConfigError(
            f"{directory / 'dataset'}: no dataset directory", "add dataset/input.json (perf_analyzer input data)"
        )
    target = (directory / relative).resolve()
    if not target.is_relative_to(dataset):
        raise fields.fail(
            "input_data",
            f"{relative!r} is outside dataset/",
            "only dataset/ is mounted in the analyzer; move the file there",
        )
    if not target.is_file():
        raise ConfigError(
            f"{directory / relative}: input data file not found",
            "create it, or run: tisbench dataset skeleton NAME -m MODEL",
        )
