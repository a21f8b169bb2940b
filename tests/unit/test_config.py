"""stack.yaml and the stack directory → Stack, and every way they can be wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_inputs import add_model, make_stack

from composer.core.config import AnalyzerOptions, ServerOptions, load_stack
from composer.core.errors import ConfigError, ReleaseError, TisbenchError
from composer.core.sweep import Sweep
from composer.labs.plan import plan_lab


def _error(directory: Path, error: type[TisbenchError] = ConfigError) -> str:
    with pytest.raises(error) as info:
        load_stack(directory)
    assert info.value.exit_code == 2
    return info.value.one_line()


def test_quickstart_loads_its_one_model(tmp_path: Path) -> None:
    stack = load_stack(make_stack(tmp_path))

    assert stack.model == "seed_model"
    assert stack.models == ("seed_model",)
    assert stack.file == tmp_path / "stack" / "stack.yaml"


def test_defaults_without_stack_yaml_take_the_only_model_and_the_directory_name(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, name="My Lab.2")
    (directory / "stack.yaml").unlink()

    stack = load_stack(directory)

    assert stack.file is None
    assert stack.name == "my-lab-2"
    assert stack.model == "seed_model"
    assert (stack.release, stack.images) == (None, None)
    assert stack.server == ServerOptions()
    assert stack.analyzer == AnalyzerOptions()
    assert stack.analyzer.measurement_requests == 200
    assert stack.directory == directory.resolve()
    assert stack.input_data_path == directory.resolve() / "dataset" / "input.json"


@pytest.mark.parametrize(("directory_name", "expected"), [("Été!!", "t"), ("___", "lab"), ("a" * 50, "a" * 30)])
def test_default_name_is_a_valid_lab_name(tmp_path: Path, directory_name: str, expected: str) -> None:
    directory = make_stack(tmp_path, name=directory_name)
    (directory / "stack.yaml").unlink()

    assert load_stack(directory).name == expected


FULL = """\
name: full-lab
release: "23.08"
images: ngc
model: seed_model
server:
  args: ["--log-verbose=1", 7]
  shm_size: 512m
  host: 0.0.0.0
  ports: {http: 18000, grpc: 18001, metrics: 0}
  ready_timeout: 30
analyzer:
  input_data: dataset/input.json
  request_rate: "10:50:20"
  protocol: grpc
  measurement_interval: 5000
  shapes: {INPUT0: [1, 4]}
  args: ["--percentile=95"]
  timeout: 90.5
"""


def test_every_field_is_read(tmp_path: Path) -> None:
    stack = load_stack(make_stack(tmp_path, FULL))

    assert (stack.name, stack.release, stack.images, stack.model) == ("full-lab", "23.08", "ngc", "seed_model")
    assert stack.server == ServerOptions(
        args=("--log-verbose=1", "7"),
        shm_size="512m",
        host="0.0.0.0",
        http_port=18000,
        grpc_port=18001,
        metrics_port=0,
        ready_timeout_s=30.0,
    )
    assert stack.analyzer == AnalyzerOptions(
        input_data="dataset/input.json",
        sweep=Sweep("request_rate", 10, 50, 20),
        protocol="grpc",
        measurement_requests=None,
        measurement_interval_ms=5000,
        shapes=(("INPUT0", (1, 4)),),
        args=("--percentile=95",),
        timeout_s=90.5,
        sweep_set=True,
    )


@pytest.mark.parametrize(
    ("text", "sweep"),
    [
        ("4", Sweep("concurrency", 4, 4, 1)),
        ('"1:8"', Sweep("concurrency", 1, 8, 1)),
        ('"1:8:2"', Sweep("concurrency", 1, 8, 2)),
        ("4096", Sweep("concurrency", 4096, 4096, 1)),
    ],
)
def test_concurrency_forms(tmp_path: Path, text: str, sweep: Sweep) -> None:
    stack = load_stack(make_stack(tmp_path, f"analyzer:\n  concurrency: {text}\n"))

    assert stack.analyzer.sweep == sweep


def test_ulimits_merge_over_the_defaults_and_null_drops_one(tmp_path: Path) -> None:
    stack = load_stack(make_stack(tmp_path, "server:\n  ulimits: {memlock: null, nofile: 1024}\n"))

    assert stack.server.ulimits == (("stack", 67108864), ("nofile", 1024))
    assert stack.server.ulimits_set == ("nofile",)  # the user's own; memlock and stack stay advice


def test_ulimits_without_stack_yaml_are_all_advice(tmp_path: Path) -> None:
    stack = load_stack(make_stack(tmp_path, "model: seed_model\n"))

    assert dict(stack.server.ulimits) == {"memlock": -1, "stack": 67108864}
    assert stack.server.ulimits_set == ()


def test_null_values_mean_defaults(tmp_path: Path) -> None:
    stack = load_stack(make_stack(tmp_path, "model:\nserver:\nanalyzer:\n  timeout:\n"))

    assert stack.server == ServerOptions()
    assert stack.analyzer == AnalyzerOptions()


# (stack.yaml text, field the message must name)
INVALID_FIELDS = [
    pytest.param("modle: seed_model\n", "'modle' — did you mean 'model'?", id="unknown-key-did-you-mean"),
    pytest.param("server:\n  portz: {}\n", "'server.portz' — did you mean 'ports'?", id="unknown-nested-key"),
    pytest.param("analyzer:\n  zzz: 1\n", "analyzer.zzz", id="unknown-key-lists-allowed"),
    pytest.param("1: x\n", "unknown key '1'", id="non-string-key"),
    pytest.param("name: Bad Name\n", "name", id="name-spaces"),
    pytest.param("name: 7\n", "name", id="name-number"),
    pytest.param("name: " + "a" * 41 + "\n", "name", id="name-too-long"),
    pytest.param("images: docker\n", "images", id="images-unknown"),
    pytest.param("images: [ngc]\n", "images", id="images-list"),
    pytest.param("model: 3\n", "model", id="model-number"),
    pytest.param("model: ''\n", "model", id="model-empty"),
    pytest.param("model: [a]\n", "model", id="model-list"),
    pytest.param("release: 24.10\n", "release", id="release-unquoted-float"),
    pytest.param("server: []\n", "server", id="server-list"),
    pytest.param("server: 0\n", "server", id="server-zero"),
    pytest.param("server: abc\n", "server", id="server-string"),
    pytest.param("analyzer: false\n", "analyzer", id="analyzer-false"),
    pytest.param("server:\n  ports: [8000]\n", "server.ports", id="ports-list"),
    pytest.param("server:\n  ports: {http: 70000}\n", "server.ports.http", id="port-70000"),
    pytest.param("server:\n  ports: {grpc: -1}\n", "server.ports.grpc", id="port-negative"),
    pytest.param("server:\n  ports: {metrics: abc}\n", "server.ports.metrics", id="port-string"),
    pytest.param("server:\n  ports: {http: 8000.0}\n", "server.ports.http", id="port-float"),
    pytest.param("server:\n  ports: {http: true}\n", "server.ports.http", id="port-bool"),
    pytest.param("server:\n  ports: {http: 9000, metrics: 9000}\n", "server.ports", id="same-port-twice"),
    pytest.param("server:\n  args: --x\n", "server.args", id="args-string"),
    pytest.param("server:\n  args: [[a]]\n", "server.args", id="args-nested"),
    pytest.param("server:\n  args: [true]\n", "server.args", id="args-bool"),
    pytest.param("server:\n  shm_size: 0\n", "server.shm_size", id="shm-zero"),
    pytest.param("server:\n  shm_size: -1g\n", "server.shm_size", id="shm-negative"),
    pytest.param("server:\n  shm_size: 1.5g\n", "server.shm_size", id="shm-fraction"),
    pytest.param("server:\n  host: localhost\n", "server.host", id="host-name"),
    pytest.param("server:\n  host: 300.1.1.1\n", "server.host", id="host-bad-ip"),
    pytest.param("server:\n  ulimits: [memlock]\n", "server.ulimits", id="ulimits-list"),
    pytest.param("server:\n  ulimits: {memlok: -1}\n", "'server.ulimits.memlok' — did you mean", id="ulimits-unknown"),
    pytest.param("server:\n  ulimits: {stack: big}\n", "server.ulimits.stack", id="ulimits-word"),
    pytest.param("server:\n  ulimits: {nofile: -2}\n", "server.ulimits.nofile", id="ulimits-below-unlimited"),
    pytest.param("server:\n  ready_timeout: 0\n", "server.ready_timeout", id="ready-timeout-zero"),
    pytest.param("server:\n  ready_timeout: -5\n", "server.ready_timeout", id="ready-timeout-negative"),
    pytest.param("server:\n  ready_timeout: soon\n", "server.ready_timeout", id="ready-timeout-word"),
    pytest.param("analyzer:\n  timeout: 1000000000000\n", "analyzer.timeout", id="timeout-huge"),
    pytest.param("analyzer:\n  timeout: .nan\n", "analyzer.timeout", id="timeout-nan"),
    pytest.param("analyzer:\n  timeout: .inf\n", "analyzer.timeout", id="timeout-inf"),
    pytest.param('analyzer:\n  concurrency: "4:1"\n', "analyzer.concurrency", id="concurrency-reversed"),
    pytest.param('analyzer:\n  concurrency: "0"\n', "analyzer.concurrency", id="concurrency-zero"),
    pytest.param('analyzer:\n  concurrency: "a:b"\n', "analyzer.concurrency", id="concurrency-words"),
    pytest.param('analyzer:\n  concurrency: "1:2:0"\n', "analyzer.concurrency", id="concurrency-step-zero"),
    pytest.param('analyzer:\n  concurrency: "1:2:3:4"\n', "analyzer.concurrency", id="concurrency-four-parts"),
    pytest.param("analyzer:\n  concurrency: 1.5\n", "analyzer.concurrency", id="concurrency-fraction"),
    pytest.param("analyzer:\n  concurrency: -3\n", "analyzer.concurrency", id="concurrency-negative"),
    pytest.param("analyzer:\n  concurrency: 1000000000\n", "analyzer.concurrency", id="concurrency-huge"),
    pytest.param('analyzer:\n  concurrency: "1:4096:1"\n', "analyzer.concurrency", id="concurrency-too-many-points"),
    pytest.param('analyzer:\n  request_rate: "0:10"\n', "analyzer.request_rate", id="rate-zero"),
    pytest.param("analyzer:\n  concurrency: 2\n  request_rate: 5\n", "request_rate", id="concurrency-and-rate"),
    pytest.param("analyzer:\n  measurement_interval: 50\n", "analyzer.measurement_interval", id="interval-tiny"),
    pytest.param(
        "analyzer:\n  measurement_interval: 5000\n  measurement_requests: 50\n",
        "analyzer.measurement_interval",
        id="interval-and-requests",
    ),
    pytest.param("analyzer:\n  measurement_requests: 0\n", "analyzer.measurement_requests", id="requests-zero"),
    pytest.param(
        "analyzer:\n  measurement_requests: 100000000000\n", "analyzer.measurement_requests", id="requests-huge"
    ),
    pytest.param("analyzer:\n  protocol: udp\n", "analyzer.protocol", id="protocol-unknown"),
    pytest.param("analyzer:\n  shapes: [1]\n", "analyzer.shapes", id="shapes-list"),
    pytest.param("analyzer:\n  shapes: {IN: []}\n", "analyzer.shapes", id="shapes-empty-dims"),
    pytest.param("analyzer:\n  shapes: {IN: [-1]}\n", "analyzer.shapes", id="shapes-negative-dim"),
    pytest.param("analyzer:\n  args: {a: 1}\n", "analyzer.args", id="analyzer-args-mapping"),
    pytest.param("analyzer:\n  input_data: ''\n", "analyzer.input_data", id="input-empty"),
    pytest.param("analyzer:\n  input_data: ../x.json\n", "analyzer.input_data", id="input-parent"),
    pytest.param("analyzer:\n  input_data: /etc/hostname\n", "analyzer.input_data", id="input-absolute"),
    pytest.param(
        "analyzer:\n  input_data: models/seed_model/config.pbtxt\n", "analyzer.input_data", id="input-in-models"
    ),
]


@pytest.mark.parametrize(("text", "field"), INVALID_FIELDS)
def test_invalid_field_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    directory = make_stack(tmp_path, text)
    (directory.parent / "x.json").write_text("{}", encoding="utf-8")

    line = _error(directory)

    assert str(directory / "stack.yaml") in line
    assert field in line


def test_unquoted_release_explains_quoting(tmp_path: Path) -> None:
    line = _error(make_stack(tmp_path, "release: 24.10\n"))

    assert "quote it" in line and "24.1 " in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("model: [seed_model\n", "not valid YAML at line 2"),
        ("model: seed_model\n  bad: indent\n", "not valid YAML"),
        ("\tmodel: seed_model\n", "not valid YAML"),
        ("- model\n- seed_model\n", "got list"),
        ("just a string\n", "got str"),
        ("42\n", "got int"),
        ("model: !!python/object/apply:os.system [echo]\n", "not valid YAML"),
    ],
    ids=["empty", "comment-only", "unclosed-flow", "bad-indent", "tab", "list", "string", "number", "python-tag"],
)
def test_stack_yaml_that_is_not_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    directory = make_stack(tmp_path, text)

    line = _error(directory)

    assert line.startswith(f"{directory / 'stack.yaml'}: ")
    assert message in line


def test_stack_yaml_in_another_encoding(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "stack.yaml").write_bytes("model: s\xe9ed\n".encode("latin-1"))

    assert "cannot be read" in _error(directory)


def test_release_is_kept_as_text_and_checked_when_planning(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, 'release: "23.02"\n')

    assert load_stack(directory).release == "23.02"
    with pytest.raises(ReleaseError) as info:
        plan_lab(directory, release=None, images=None)
    assert f"{directory / 'stack.yaml'}: release" in info.value.one_line()
    assert info.value.exit_code == 2


def test_release_flag_wins_over_stack_yaml(tmp_path: Path) -> None:
    plan = plan_lab(make_stack(tmp_path, 'release: "23.02"\n'), release="23.08", images=None)

    assert str(plan.release) == "23.08"


def test_input_data_symlink_out_of_dataset_is_refused(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, "analyzer:\n  input_data: dataset/link.json\n")
    outside = tmp_path / "secret.json"
    outside.write_text("{}", encoding="utf-8")
    (directory / "dataset" / "link.json").symlink_to(outside)

    assert "outside dataset/" in _error(directory)


def test_input_data_missing(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, "analyzer:\n  input_data: dataset/other.json\n")

    line = _error(directory)

    assert str(directory / "dataset" / "other.json") in line and "not found" in line


def test_default_input_data_missing(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "dataset" / "input.json").unlink()

    assert "input.json: input data file not found" in _error(directory)


def test_missing_dataset_directory(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "dataset" / "input.json").unlink()
    (directory / "dataset").rmdir()

    assert f"{directory / 'dataset'}: no dataset directory" in _error(directory)


def test_missing_models_directory(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    shutil.rmtree(directory / "models")

    assert f"{directory / 'models'}: no model repository" in _error(directory)


def test_models_directory_without_model_directories(tmp_path: Path) -> None:
    empty = make_stack(tmp_path)
    (empty / "stack.yaml").unlink()
    shutil.rmtree(empty / "models")
    (empty / "models").mkdir()
    (empty / "models" / ".hidden").mkdir()
    (empty / "models" / "README").write_text("not a model", encoding="utf-8")

    assert f"{empty / 'models'}: holds no model" in _error(empty)


def test_model_directory_without_config_loads_triton_auto_completes_it(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "models" / "seed_model" / "config.pbtxt").unlink()

    assert load_stack(directory).model == "seed_model"


def test_model_directory_without_config_or_version(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "models" / "seed_model" / "config.pbtxt").unlink()
    shutil.rmtree(directory / "models" / "seed_model" / "1")

    assert f"{directory / 'models' / 'seed_model'}: no config.pbtxt and no version directory" in _error(directory)


def test_several_models_and_none_chosen_lists_them(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "stack.yaml").unlink()
    add_model(directory, "alpha")
    add_model(directory, "zeta")

    line = _error(directory)

    assert "3 models (alpha, seed_model, zeta)" in line and "-m NAME" in line


def test_several_models_one_chosen(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, "model: alpha\n")
    add_model(directory, "alpha")

    stack = load_stack(directory)

    assert (stack.model, stack.models) == ("alpha", ("alpha", "seed_model"))
    assert load_stack(directory, model="seed_model").model == "seed_model"


def test_chosen_model_absent_suggests_the_closest(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, "model: seed_modle\n")

    line = _error(directory)

    assert f"{directory / 'stack.yaml'}: model" in line and "did you mean 'seed_model'?" in line


def test_model_flag_absent_names_the_flag_and_lists_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_stack(make_stack(tmp_path), model="zzz")

    assert info.value.one_line().startswith("-m: 'zzz'")
    assert "models present: seed_model" in info.value.one_line()


def test_stack_directory_that_does_not_exist(tmp_path: Path) -> None:
    assert f"{tmp_path / 'nope'}: not a directory" in _error(tmp_path / "nope")


def test_environment_is_read_for_either_service_in_order(tmp_path: Path) -> None:
    stack = load_stack(
        make_stack(
            tmp_path,
            "model: seed_model\nserver:\n  environment: {OMP_NUM_THREADS: 1, _B2: 'x: y'}\n"
            "analyzer:\n  environment: {EMPTY: ''}\n",
        )
    )

    assert stack.server.options.environment == (("OMP_NUM_THREADS", "1"), ("_B2", "x: y"))
    assert stack.analyzer.options.environment == (("EMPTY", ""),)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("server:\n  environment: [A=1]\n", "server.environment: ['A=1'] is not valid (expected a mapping"),
        ("server:\n  environment: {1A: x}\n", "'1A' is not a variable name"),
        ("analyzer:\n  environment: {A-B: x}\n", "analyzer.environment"),
        ("server:\n  environment: {A: \"x\\0y\"}\n", "A: the value holds a NUL character"),
        ("server:\n  environment: {A: true}\n", "A: the value must be a string"),
        ("server:\n  environment: {A: null}\n", "A: the value must be a string"),
        ("server:\n  enviroment: {A: x}\n", "did you mean 'environment'?"),
    ],
)
def test_a_wrong_environment_is_one_line_naming_the_field(tmp_path: Path, text: str, says: str) -> None:
    line = _error(make_stack(tmp_path, "model: seed_model\n" + text))

    assert says in line and "\n" not in line


def test_the_environment_reaches_the_design_after_tisbenchs_own(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, "model: seed_model\nanalyzer:\n  environment: {PA: '1'}\n")

    design = plan_lab(stack, release="24.10", images="lab").design("lab1")

    assert design.service("perf_analyzer").environment == (("PA", "1"),)
    assert design.manifest()["services"]["perf_analyzer"]["environment"] == {"PA": "1"}
    assert design.service("triton_server").environment == ()


def _volumes_stack(tmp_path: Path, volumes: str, service: str = "server") -> Path:
    stack = make_stack(tmp_path, f"model: seed_model\n{service}:\n  volumes: {volumes}\n")
    (stack / "data").mkdir()
    (stack / "data" / "a.json").write_text("{}")
    return stack


def test_volumes_short_and_long_syntax_are_read_only_unless_rw(tmp_path: Path) -> None:
    from composer.core.design import Mount

    stack = load_stack(
        _volumes_stack(
            tmp_path,
            "['./data:/data', './data/a.json:/etc/a.json:rw', 'cache:/cache', "
            "{type: bind, source: data, target: /d2}, {type: volume, source: vol, target: /v, read_only: false}]",
        )
    )

    data = str((tmp_path / "stack" / "data").resolve())
    assert stack.server.options.volumes == (
        Mount(data, "/data", True, "bind"),
        Mount(data + "/a.json", "/etc/a.json", False, "bind"),
        Mount("cache", "/cache", True, "volume"),
        Mount(data, "/d2", True, "bind"),
        Mount("vol", "/v", False, "volume"),
    )


@pytest.mark.parametrize(
    ("volumes", "says"),
    [
        ("['./nowhere:/data']", "server.volumes[0]: source ./nowhere does not exist"),
        ("['./data:/models']", "server.volumes[0]: target /models collides with tisbench's own mount at /models"),
        ("['./data:/models/extra']", "collides with tisbench's own mount at /models"),
        ("['./data:/workspace/dataset']", "collides with tisbench's own mount at /workspace/dataset"),
        ("['./data:data']", "server.volumes[0]: target 'data' is relative"),
        ("['./data:/data:rx']", "mode 'rx': use ro or rw"),
        ("['./data']", "is not SOURCE:TARGET[:MODE]"),
        ("[{source: ./data}]", "source and target are both needed"),
        ("[{type: tmpfs, source: x, target: /x}]", "type is bind or volume"),
        ("[{type: bind, source: ./data, target: /x, mode: ro}]", "unknown key 'mode'"),
        ("['./data:/data', './data:/data']", "server.volumes[1]: target /data is mounted twice"),
        ("['bad name!:/x']", "is not a volume name"),
        ("./data:/data", "server.volumes: expected a list"),
        ("[3]", "expected a string or a mapping"),
    ],
)
def test_a_wrong_volume_is_one_line_naming_the_entry(tmp_path: Path, volumes: str, says: str) -> None:
    line = _error(_volumes_stack(tmp_path, volumes))

    assert says in line and "\n" not in line


def test_analyzer_volumes_are_read_the_same_way(tmp_path: Path) -> None:
    line = _error(_volumes_stack(tmp_path, "['./data:/workspace/dataset/x']", service="analyzer"))

    assert "analyzer.volumes[0]: target /workspace/dataset/x collides" in line
