"""The bad-input corpus: inputs a user can get wrong, and the one line tisbench must answer with.

Each case builds a stack directory (a copy of stacks/quickstart, then ``stack_yaml`` and
``build``), runs ``tisbench COMMAND ARGS`` in it as a real subprocess, and expects ``exit_code``
and exactly one stderr line containing ``expect``. In ``args``, ``{stack}`` is the stack directory.

To add a case: append a ``BadInput``. Dataset cases build files under ``dataset/``; cases that
need an engine (missing image, unreachable daemon) set ``needs_docker=True`` and run only where
Docker is.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paths import E2E_STACKS

from composer.core.shipped import quickstart_stack

QUICKSTART = quickstart_stack()


def make_stack(root: Path, stack_yaml: str | None = None, *, name: str = "stack") -> Path:
    """Copy the quickstart into ``root/name``; ``stack_yaml`` replaces its stack.yaml."""
    directory = root / name
    shutil.copytree(QUICKSTART, directory)
    if stack_yaml is not None:
        (directory / "stack.yaml").write_text(stack_yaml, encoding="utf-8")
    return directory


def add_model(stack: Path, model: str, *, config: bool = True) -> None:
    """Another model in models/, a copy of the quickstart's seed_model."""
    shutil.copytree(stack / "models" / "seed_model", stack / "models" / model)
    config_file = stack / "models" / model / "config.pbtxt"
    if not config:
        config_file.unlink()
    else:  # Triton requires the config's name to match the directory
        config_file.write_text(config_file.read_text().replace('"seed_model"', f'"{model}"'))


@dataclass(frozen=True)
class BadInput:
    id: str
    expect: str  # a substring of the single stderr line
    stack_yaml: str | None = None  # None keeps the quickstart's stack.yaml
    build: Callable[[Path], None] | None = None  # further changes to the stack directory
    args: tuple[str, ...] = ()
    commands: tuple[str, ...] = ("check", "render")
    exit_code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    needs_docker: bool = False


def _file(relative: str, text: str) -> Callable[[Path], None]:
    def build(stack: Path) -> None:
        (stack / relative).write_text(text, encoding="utf-8")

    return build


def _remove_dir(relative: str) -> Callable[[Path], None]:
    def build(stack: Path) -> None:
        shutil.rmtree(stack / relative)

    return build


def _empty_models(stack: Path) -> None:
    shutil.rmtree(stack / "models")
    (stack / "models").mkdir()


def _two_models(stack: Path) -> None:
    (stack / "stack.yaml").unlink()
    add_model(stack, "other_model")


def _model_without_config_or_version(stack: Path) -> None:
    shutil.rmtree(stack / "models" / "seed_model")
    (stack / "models" / "seed_model").mkdir()
    (stack / "models" / "seed_model" / "model.py").write_text("# not in a version directory\n", encoding="utf-8")


_BATCHED = E2E_STACKS / "batched"


def _batched_with_data(text: str) -> Callable[[Path], None]:
    """The batched test model (max_batch_size 8, x FP32 [-1], k INT32 [2]) with this input data."""

    def build(stack: Path) -> None:
        shutil.rmtree(stack / "models")
        shutil.copytree(_BATCHED / "models", stack / "models")
        (stack / "stack.yaml").write_text("model: batched_model\n", encoding="utf-8")
        (stack / "dataset" / "input.json").write_text(text, encoding="utf-8")

    return build


def _stack_yaml_directory(stack: Path) -> None:
    (stack / "stack.yaml").unlink()
    (stack / "stack.yaml").mkdir()


def _stack_yaml_latin1(stack: Path) -> None:
    (stack / "stack.yaml").write_bytes("model: s\xe9ed_model\n".encode("latin-1"))


def _existing_file(stack: Path) -> None:
    (stack / "existing_file").write_text("not a directory\n", encoding="utf-8")


def _outside_input_file(stack: Path) -> None:
    (stack / "x.json").write_text('{"data": []}\n', encoding="utf-8")


_SEED_STEP_BODY = '{"data_path": ["file_path"], "age": [32.0], "gender": [0.0], "name": ["kim"]}'
_SEED_STEP = '{"data": [' + _SEED_STEP_BODY + "]}"


# Dataset cases: `lab` must refuse them from config.pbtxt before its first Docker call, so they
# run with no engine to reach (a Docker call would end in exit 3, not 2).
DATASET_COMMANDS = ("check", "lab")
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/tisbench-no-engine.sock"}


def _input_json(text: str) -> Callable[[Path], None]:
    def build(stack: Path) -> None:
        (stack / "dataset" / "input.json").write_text(text, encoding="utf-8")

    return build


def _remove_file(relative: str) -> Callable[[Path], None]:
    def build(stack: Path) -> None:
        (stack / relative).unlink()

    return build


CASES: tuple[BadInput, ...] = (
    # stack.yaml as a file
    BadInput("yaml-syntax", "not valid YAML at line", "model: [seed_model\n"),
    BadInput("yaml-empty", "is empty", ""),
    BadInput("yaml-only-comments", "is empty", "# nothing here\n"),
    BadInput("yaml-list", "top level must be a mapping", "- model\n- seed_model\n"),
    BadInput("yaml-python-tag", "not valid YAML", "model: !!python/object:os.system x\n"),
    BadInput("yaml-is-directory", "cannot be read", build=_stack_yaml_directory),
    BadInput("yaml-not-utf8", "cannot be read", build=_stack_yaml_latin1),
    # stack.yaml fields
    BadInput("unknown-key", "did you mean 'model'", "modle: seed_model\n"),
    BadInput("unknown-nested-key", "server.shm", "server:\n  shm: 1g\n"),
    BadInput("section-not-mapping", "server: expected a mapping", "server: []\n"),
    BadInput("name-invalid", "stack.yaml: name", "name: Bad Name\n"),
    BadInput("images-invalid", "stack.yaml: images", "images: docker\n"),
    BadInput("release-unquoted-float", "quote it", "release: 24.10\n"),
    BadInput("release-too-old-in-file", "stack.yaml: release", 'release: "23.02"\n'),
    BadInput("lab-images-release-in-file", "images: lab", 'release: "23.08"\nimages: lab\n'),
    BadInput("port-too-high", "server.ports.http", "server:\n  ports:\n    http: 70000\n"),
    BadInput("port-negative", "server.ports.grpc", "server:\n  ports:\n    grpc: -1\n"),
    BadInput("port-not-number", "server.ports.metrics", "server:\n  ports:\n    metrics: abc\n"),
    BadInput("port-twice", "same port is used twice", "server:\n  ports:\n    http: 8000\n    grpc: 8000\n"),
    BadInput("host-not-ip", "server.host", "server:\n  host: localhost\n"),
    BadInput("shm-size-invalid", "server.shm_size", "server:\n  shm_size: lots\n"),
    BadInput("server-args-not-list", "server.args", "server:\n  args: --log-verbose=1\n"),
    BadInput("ready-timeout-zero", "server.ready_timeout", "server:\n  ready_timeout: 0\n"),
    BadInput("timeout-huge", "analyzer.timeout", "analyzer:\n  timeout: 1000000000000\n"),
    BadInput("concurrency-reversed", "analyzer.concurrency", 'analyzer:\n  concurrency: "4:1"\n'),
    BadInput("concurrency-huge", "analyzer.concurrency", "analyzer:\n  concurrency: 1000000000\n"),
    BadInput("concurrency-and-rate", "request_rate", "analyzer:\n  concurrency: 2\n  request_rate: 10\n"),
    BadInput(
        "measurement-both",
        "measurement_requests",
        "analyzer:\n  measurement_interval: 5000\n  measurement_requests: 100\n",
    ),
    BadInput("measurement-requests-zero", "analyzer.measurement_requests", "analyzer:\n  measurement_requests: 0\n"),
    BadInput("protocol-invalid", "analyzer.protocol", "analyzer:\n  protocol: udp\n"),
    BadInput("stability-retries-negative", "analyzer.stability_retries", "analyzer:\n  stability_retries: -1\n"),
    BadInput("stability-retries-not-number", "analyzer.stability_retries", "analyzer:\n  stability_retries: many\n"),
    BadInput("shapes-invalid", "analyzer.shapes", "analyzer:\n  shapes:\n    INPUT0: [0]\n"),
    BadInput(
        "input-outside-dataset", "outside dataset/", "analyzer:\n  input_data: ../x.json\n", build=_outside_input_file
    ),
    BadInput("input-missing", "input data file not found", "analyzer:\n  input_data: dataset/nope.json\n"),
    # model repository and stack directory
    BadInput("no-models-dir", "no model repository", build=_remove_dir("models")),
    BadInput("empty-models-dir", "holds no model", build=_empty_models),
    BadInput(
        "model-without-config-or-version",
        "no config.pbtxt and no version directory",
        build=_model_without_config_or_version,
    ),
    BadInput("several-models-none-chosen", "other_model, seed_model", build=_two_models),
    BadInput("chosen-model-absent", "did you mean 'seed_model'", "model: seed_modle\n"),
    BadInput("no-dataset-dir", "no dataset directory", build=_remove_dir("dataset")),
    BadInput("stack-dir-missing", "not a directory", args=("{stack}/nope",)),
    BadInput("stack-dir-is-file", "is a file", args=("{stack}/stack.yaml",)),
    # --release and --images
    BadInput("release-too-old", "23.03", args=("--release", "23.02")),
    BadInput("release-one-digit-month", "YY.MM", args=("--release", "23.8")),
    BadInput("release-word", "YY.MM", args=("--release", "abc")),
    BadInput("release-empty", "YY.MM", args=("--release", "")),
    BadInput("release-from-env", "--release", env={"TISBENCH_RELEASE": "latest"}),
    BadInput("lab-images-no-release", "24.10", args=("--images", "lab", "--release", "23.08")),
    BadInput("images-unknown", "--images", args=("--images", "docker")),
    # other flags
    BadInput("unknown-option", "No such option", args=("--bogus",)),
    BadInput("extra-argument", "unexpected extra argument", args=(".", "more")),
    BadInput("model-flag-absent", "did you mean 'seed_model'", args=("-m", "seed_mdoel"), commands=("check",)),
    BadInput("name-flag-invalid", "--name", args=("--name", "Bad Name"), commands=("render",)),
    BadInput(
        "output-into-file",
        "is a file",
        args=("-o", "existing_file/out.yml"),
        commands=("render",),
        build=_existing_file,
    ),
    BadInput("output-is-directory", "is a directory", args=("-o", "dataset"), commands=("render",)),
    # bench flags, refused by `lab` before any Docker call
    BadInput("concurrency-flag-zero", "--concurrency", args=("--concurrency", "0"), commands=("lab",)),
    BadInput("concurrency-flag-reversed", "--concurrency", args=("--concurrency", "4:1"), commands=("lab",)),
    BadInput("request-rate-flag-word", "--request-rate", args=("--request-rate", "fast"), commands=("lab",)),
    BadInput(
        "both-load-modes",
        "choose one load mode",
        args=("--concurrency", "1", "--request-rate", "10"),
        commands=("lab",),
    ),
    BadInput("request-rate-zero", "--request-rate", args=("--request-rate", "0"), commands=("lab",)),
    BadInput(
        "shared-memory-cuda-without-gpus",
        "--shared-memory cuda: CUDA shared memory needs a GPU given to the server",
        args=("--shared-memory", "cuda", "--gpus", "none"),
        commands=("lab", "render"),
    ),
    BadInput(
        "shared-memory-on-swarm",
        "shared memory system: a swarm's clients need not share the server's host",
        args=("--shared-memory", "system", "--engine", "swarm"),
        commands=("lab", "render"),
    ),
    BadInput("shared-memory-word", "analyzer.shared_memory", "analyzer:\n  shared_memory: fast\n"),
    BadInput(
        "poisson-at-concurrency",
        "--request-distribution: poisson needs a request-rate sweep",
        args=("--request-distribution", "poisson"),
        commands=("lab",),
    ),
    BadInput(
        "intervals-malformed",
        "line 2: '1.5' is not an interval",
        build=_file("dataset/intervals.txt", "1000\n1.5\n"),
        args=("--request-intervals", "dataset/intervals.txt"),
        commands=("lab",),
    ),
    BadInput(
        "intervals-in-stack-yaml-malformed",
        "analyzer.request_intervals: intervals.txt, line 1: 'soon' is not an interval",
        stack_yaml="analyzer:\n  request_intervals: dataset/intervals.txt\n",
        build=_file("dataset/intervals.txt", "soon\n"),
        commands=("check", "render", "lab"),
    ),
    BadInput(
        "intervals-beside-a-sweep",
        "an interval file sets the load itself",
        build=_file("dataset/intervals.txt", "1000\n"),
        args=("--request-intervals", "dataset/intervals.txt", "--request-rate", "10"),
        commands=("lab",),
    ),
    BadInput("shape-flag-syntax", "--shape", args=("--shape", "age=1"), commands=("lab",)),
    BadInput("shape-flag-zero-dim", "--shape", args=("--shape", "age:0"), commands=("lab",)),
    BadInput("clients-on-local-engine", "--engine swarm", args=("--clients", "3"), commands=("lab",)),
    BadInput("gpus-flag-word", "--gpus", args=("--gpus", "many"), commands=("lab", "render")),
    BadInput("matrix-bad-release", "--releases", args=("--releases", "24.10,22.01"), commands=("matrix",)),
    # dataset/input.json, checked against config.pbtxt by `check` (no server needed)
    BadInput(
        "dataset-not-json", "not valid JSON", build=_input_json('{"data": [}'), commands=DATASET_COMMANDS, env=NO_ENGINE
    ),
    BadInput("dataset-no-data", '"data"', build=_input_json('{"steps": []}'), commands=DATASET_COMMANDS, env=NO_ENGINE),
    BadInput(
        "dataset-empty-data", '"data"', build=_input_json('{"data": []}'), commands=DATASET_COMMANDS, env=NO_ENGINE
    ),
    BadInput(
        "dataset-string-for-fp32",
        "input 'age'",
        build=_input_json(_SEED_STEP.replace("[32.0]", '["old"]')),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    BadInput(
        "dataset-missing-input",
        "'gender'",
        build=_input_json(_SEED_STEP.replace('"gender": [0.0], ', "")),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    BadInput(
        "dataset-unknown-input",
        "'agee'",
        build=_input_json(_SEED_STEP.replace('"age"', '"agee"')),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    BadInput(
        "dataset-inconsistent-shapes",
        "input 'age'",
        build=_input_json(
            '{"data": [' + _SEED_STEP_BODY + ", " + _SEED_STEP_BODY.replace("[32.0]", "[32.0, 1.0]") + "]}"
        ),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    BadInput(
        "dataset-missing-file",
        "input data file not found",
        build=_remove_file("dataset/input.json"),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    BadInput(
        "dataset-integer-for-fp32",
        "write 32.0",
        build=_input_json(_SEED_STEP.replace("[32.0]", "[32]")),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    BadInput(
        "dataset-batch-dim-in-shape",
        "does not fit the model shape [-1]",
        build=_batched_with_data('{"data": [{"x": {"content": [1.0, 2.0, 3.0], "shape": [1, 3]}, "k": [1, 2]}]}'),
        commands=DATASET_COMMANDS,
        env=NO_ENGINE,
    ),
    # where images come from
    BadInput("pull-word", "pull", "model: seed_model\npull: sometimes\n"),
    BadInput("image-repo-with-tag", "image_repo", "model: seed_model\nimage_repo: nvcr.io/nvidia/tritonserver:24.10\n"),
    BadInput("server-image-without-tag", "server.image", "model: seed_model\nserver:\n  image: UPPER/case\n"),
    # the user's own server: volumes, environment, requirements, build
    BadInput("volume-missing-source", "server.volumes[0]: source ./nowhere does not exist",
             "model: seed_model\nserver:\n  volumes: ['./nowhere:/data']\n"),
    BadInput("volume-on-models", "server.volumes[0]: target /models collides",
             "model: seed_model\nserver:\n  volumes: ['./models:/models']\n"),
    BadInput("volume-relative-target", "analyzer.volumes[0]: target 'data' is relative",
             "model: seed_model\nanalyzer:\n  volumes: ['./dataset:data']\n"),
    BadInput("volume-mode", "server.volumes[0]: mode 'rx'",
             "model: seed_model\nserver:\n  volumes: ['./models:/m:rx']\n"),
    BadInput("environment-name", "server.environment", "model: seed_model\nserver:\n  environment: {1X: y}\n"),
    BadInput("requirements-file-missing", "server.requirements",
             "model: seed_model\nserver:\n  requirements: req.txt\n"),
    BadInput("build-context-missing", "server.build", "model: seed_model\nserver:\n  build: {context: nowhere}\n"),
    BadInput("image-repo-flag", "--image-repo", args=("--image-repo", "http://mirror/x"), commands=("render", "lab")),
    BadInput("pull-flag-word", "--pull", args=("--pull", "sometimes"), commands=("render", "lab")),
    BadInput(
        "image-repo-with-lab-images",
        "--image-repo names registry images",
        args=("--images", "lab", "--image-repo", "mirror.example/nvidia/tritonserver"),
        commands=("render", "lab"),
    ),
)
