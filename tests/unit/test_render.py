"""The rendered docker-compose.yml: its shape, and that no user value can change that shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_inputs import make_stack
from compose_check import compose_config as run_compose_config
from compose_check import require_compose
from compose_oracle import unescape

from composer.labs.plan import plan_lab

PROJECT = "lab1"

INJECTIONS = [
    pytest.param("a: b", id="colon"),
    pytest.param("# x", id="comment"),
    pytest.param('"', id="double-quote"),
    pytest.param("'", id="single-quote"),
    pytest.param("{{ 7*7 }}", id="jinja-expression"),
    pytest.param("{% raw %}", id="jinja-statement"),
    pytest.param("{# c #}", id="jinja-comment"),
    pytest.param("x\nevil: key", id="newline-key"),
    pytest.param("x\n    - evil", id="newline-item"),
    pytest.param("x\r\nevil: key", id="crlf-key"),
    pytest.param("${HOME}", id="interpolation"),
    pytest.param("$HOME", id="bare-variable"),
    pytest.param("$$", id="double-dollar"),
    pytest.param("$", id="dollar"),
    pytest.param("${X:?boom}", id="interpolation-error"),
    pytest.param("- item", id="dash"),
    pytest.param("&anchor", id="anchor"),
    pytest.param("*alias", id="alias"),
    pytest.param("!!python/object:os.system", id="tag"),
    pytest.param("? key", id="complex-key"),
    pytest.param("|", id="literal-block"),
    pytest.param("--- ...", id="document-markers"),
    pytest.param("null", id="null-word"),
    pytest.param("true", id="bool-word"),
    pytest.param("0x1F", id="hex-number"),
    pytest.param("", id="empty"),
    pytest.param("  padded  ", id="spaces"),
    pytest.param("héllo ünïcode 日本 \u2028 \x85 😀", id="unicode"),
    pytest.param("\\", id="backslash"),
    pytest.param("\\u0041 \\n", id="escape-lookalikes"),
    pytest.param("a\tb", id="tab"),
    pytest.param("\x7f\x1b[31m", id="control"),
    pytest.param("]", id="close-bracket"),
    pytest.param("}", id="close-brace"),
    pytest.param("[a, b]", id="flow-sequence"),
    pytest.param("`id` $(id); rm -rf /", id="shell"),
    pytest.param("--x=" + "y" * 20_000, id="very-long"),
]
# Cases also checked against the real `docker compose config` (each call takes a few tenths of a second).
COMPOSE_SUBSET = {
    "newline-key",
    "interpolation",
    "double-dollar",
    "interpolation-error",
    "unicode",
    "backslash",
    "double-quote",
    "tag",
    "control",
}


def _plan(directory: Path, *, release: str = "23.08", images: str = "ngc") -> Any:
    return plan_lab(directory, release=release, images=images)


def _render(directory: Path, **kwargs: str) -> dict[str, Any]:
    document = yaml.safe_load(_plan(directory, **kwargs).render(PROJECT))
    assert isinstance(document, dict)
    return document


def _with_args(tmp_path: Path, args: list[str]) -> Path:
    return make_stack(tmp_path, yaml.safe_dump({"model": "seed_model", "server": {"args": args}}))


def _skeleton(node: Any) -> Any:
    """The document with every scalar replaced by its type: equal skeletons mean equal keys everywhere."""
    if isinstance(node, dict):
        return {key: _skeleton(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_skeleton(item) for item in node]
    return type(node).__name__


@pytest.fixture
def compose_config(tmp_path: Path) -> Any:
    """Parse a rendered file with the real compose; skipped without compose, unless CI=true.

    compose interpolates ``$$`` to ``$``, and ``config`` prints a compose file again, so it writes
    each ``$`` back as ``$$``: the values compose holds are the printed ones after ``unescape``.
    """
    require_compose()

    def config(text: str) -> dict[str, Any]:
        file = tmp_path / "compose-check" / "docker-compose.yml"
        file.parent.mkdir(exist_ok=True)
        file.write_text(text, encoding="utf-8")
        return run_compose_config(file)

    return config


def test_quickstart_renders_server_and_analyzer_on_tis_net(tmp_path: Path) -> None:
    directory = make_stack(tmp_path).resolve()

    doc = _render(directory)

    assert doc["name"] == PROJECT
    assert set(doc) == {"name", "services", "networks"}
    assert set(doc["services"]) == {"triton_server", "perf_analyzer"}
    assert set(doc["networks"]) == {"tis_net"}
    server, analyzer = doc["services"]["triton_server"], doc["services"]["perf_analyzer"]
    assert server["image"] == "nvcr.io/nvidia/tritonserver:23.08-py3"
    assert analyzer["image"] == "nvcr.io/nvidia/tritonserver:23.08-py3-sdk"
    assert server["networks"] == analyzer["networks"] == ["tis_net"]
    assert server["command"] == ["tritonserver", "--model-repository=/models"]
    assert server["volumes"] == [
        {"type": "bind", "source": str(directory / "models"), "target": "/models", "read_only": True}
    ]
    assert analyzer["volumes"] == [
        {"type": "bind", "source": str(directory / "dataset"), "target": "/workspace/dataset", "read_only": True}
    ]
    assert analyzer["entrypoint"] == ["sleep", "infinity"]
    assert server["shm_size"] == "1g"
    assert server["ulimits"] == {"memlock": -1, "stack": 67108864}  # NGC's advice, asked for by default
    assert server["labels"]["tisbench.ulimits-advisory"] == "memlock,stack"
    assert "tisbench.ulimits-advisory" not in analyzer["labels"]


def test_a_ulimit_stack_yaml_sets_is_not_advice(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "stack.yaml").write_text("model: seed_model\nserver:\n  ulimits: {memlock: -1}\n")

    server = _render(directory)["services"]["triton_server"]

    assert server["ulimits"] == {"memlock": -1, "stack": 67108864}
    assert server["labels"]["tisbench.ulimits-advisory"] == "stack"


def test_labels_name_the_lab_on_every_object(tmp_path: Path) -> None:
    directory = make_stack(tmp_path).resolve()

    doc = _render(directory)

    expected = {
        "tisbench.lab": PROJECT,
        "tisbench.release": "23.08",
        "tisbench.stack": str(directory),
        "tisbench.model": "seed_model",
        "tisbench.gpus": "none",
    }
    assert doc["services"]["triton_server"]["labels"] == {**expected, "tisbench.ulimits-advisory": "memlock,stack"}
    assert doc["services"]["perf_analyzer"]["labels"] == expected
    assert doc["networks"]["tis_net"]["labels"] == expected


def test_ports_are_ephemeral_on_loopback_by_default(tmp_path: Path) -> None:
    doc = _render(make_stack(tmp_path))

    assert doc["services"]["triton_server"]["ports"] == [
        {"target": target, "host_ip": "127.0.0.1", "protocol": "tcp"} for target in (8000, 8001, 8002)
    ]


def test_ports_are_fixed_when_the_stack_sets_them(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, "server:\n  host: 0.0.0.0\n  ports: {http: 18000, metrics: 18002}\n")

    ports = _render(directory)["services"]["triton_server"]["ports"]

    assert ports == [
        {"target": 8000, "host_ip": "0.0.0.0", "published": "18000", "protocol": "tcp"},
        {"target": 8001, "host_ip": "0.0.0.0", "protocol": "tcp"},
        {"target": 8002, "host_ip": "0.0.0.0", "published": "18002", "protocol": "tcp"},
    ]


def test_defaults_without_stack_yaml_keep_ngc_ulimits(tmp_path: Path) -> None:
    directory = make_stack(tmp_path)
    (directory / "stack.yaml").unlink()

    server = _render(directory)["services"]["triton_server"]

    assert server["ulimits"] == {"memlock": -1, "stack": 67108864}
    assert server["shm_size"] == "1g"


def test_stack_shm_size_and_args_reach_the_server(tmp_path: Path) -> None:
    directory = make_stack(tmp_path, "server:\n  shm_size: 256m\n  args: [--log-verbose=1, --exit-on-error=false]\n")

    server = _render(directory)["services"]["triton_server"]

    assert server["shm_size"] == "256m"
    assert server["command"][2:] == ["--log-verbose=1", "--exit-on-error=false"]


def test_lab_images_for_24_10(tmp_path: Path) -> None:
    services = _render(make_stack(tmp_path), release="24.10", images="lab")["services"]

    assert services["triton_server"]["image"] == "tisbench-lab/tritonserver:24.10-py3"
    assert services["perf_analyzer"]["image"] == "tisbench-lab/tritonserver:24.10-py3-sdk"


def test_every_lab_release_renders_lab_images(tmp_path: Path) -> None:
    from composer.core.lab_releases import LAB_RECIPES, lab_image_tags

    directory = make_stack(tmp_path)
    for release in LAB_RECIPES:
        services = _render(directory, release=release, images="lab")["services"]
        images = (services["triton_server"]["image"], services["perf_analyzer"]["image"])
        assert images == lab_image_tags(release)


def test_rendered_file_passes_compose(tmp_path: Path, compose_config: Any) -> None:
    directory = make_stack(tmp_path, "server:\n  ports: {http: 18000}\n").resolve()

    config = compose_config(_plan(directory).render(PROJECT))

    server = config["services"]["triton_server"]
    assert config["name"] == PROJECT
    assert server["image"] == "nvcr.io/nvidia/tritonserver:23.08-py3"
    assert server["volumes"][0]["source"] == str(directory / "models")
    assert [p.get("published") for p in server["ports"]] == ["18000", None, None]
    assert set(config["networks"]) == {"tis_net"}


@pytest.mark.parametrize("value", INJECTIONS)
def test_server_arg_cannot_change_the_document(tmp_path: Path, value: str) -> None:
    baseline = _render(_with_args(tmp_path / "plain", ["plain"]))
    directory = _with_args(tmp_path / "injected", [value])
    assert directory.joinpath("stack.yaml").exists()

    doc = _render(directory)

    assert _skeleton(doc) == _skeleton(baseline)
    assert [unescape(arg) for arg in doc["services"]["triton_server"]["command"]] == [
        "tritonserver",
        "--model-repository=/models",
        value,
    ]


def test_all_injections_together_reach_compose_unchanged(tmp_path: Path, compose_config: Any) -> None:
    values = [str(param.values[0]) for param in INJECTIONS]
    directory = _with_args(tmp_path, values)

    config = compose_config(_plan(directory).render(PROJECT))

    command = [unescape(arg) for arg in config["services"]["triton_server"]["command"]]
    assert command == ["tritonserver", "--model-repository=/models", *values]


@pytest.mark.parametrize("value", [p for p in INJECTIONS if p.id in COMPOSE_SUBSET])
def test_server_arg_reaches_compose_unchanged(tmp_path: Path, compose_config: Any, value: str) -> None:
    config = compose_config(_plan(_with_args(tmp_path, [value])).render(PROJECT))

    command = [unescape(arg) for arg in config["services"]["triton_server"]["command"]]
    assert command == ["tritonserver", "--model-repository=/models", value]


def _directory_name(value: str) -> str | None:
    """The injection as a directory name, where Linux allows one (no '/', NUL, '.', '..', > 255 bytes)."""
    name = value[:200]
    if not name or "/" in name or "\x00" in name or name in (".", "..") or len(name.encode()) > 255:
        return None
    return name


@pytest.mark.parametrize("value", INJECTIONS)
def test_stack_directory_path_cannot_change_the_document(tmp_path: Path, value: str) -> None:
    name = _directory_name(value)
    if name is None:
        pytest.skip("not a possible directory name")
    baseline = _render(make_stack(tmp_path / "plain"))
    directory = make_stack(tmp_path / "injected", name=name).resolve()

    doc = _render(directory)

    assert _skeleton(doc) == _skeleton(baseline)
    services = doc["services"]
    assert unescape(services["triton_server"]["volumes"][0]["source"]) == str(directory / "models")
    assert unescape(services["perf_analyzer"]["volumes"][0]["source"]) == str(directory / "dataset")
    assert unescape(services["triton_server"]["labels"]["tisbench.stack"]) == str(directory)


@pytest.mark.parametrize("value", [p for p in INJECTIONS if p.id in COMPOSE_SUBSET])
def test_stack_directory_path_reaches_compose_unchanged(tmp_path: Path, compose_config: Any, value: str) -> None:
    name = _directory_name(value)
    if name is None:
        pytest.skip("not a possible directory name")
    directory = make_stack(tmp_path, name=name).resolve()

    config = compose_config(_plan(directory).render(PROJECT))

    services = config["services"]
    assert unescape(services["triton_server"]["volumes"][0]["source"]) == str(directory / "models")
    assert unescape(services["perf_analyzer"]["volumes"][0]["source"]) == str(directory / "dataset")
    assert unescape(services["perf_analyzer"]["labels"]["tisbench.stack"]) == str(directory)


def test_environment_reaches_compose_unchanged(tmp_path: Path, compose_config: Any) -> None:
    values = {f"V{i}": str(p.values[0]) for i, p in enumerate(INJECTIONS) if p.id in COMPOSE_SUBSET}
    directory = make_stack(tmp_path, yaml.safe_dump({"model": "seed_model", "analyzer": {"environment": values}}))

    config = compose_config(_plan(directory).render(PROJECT))

    environment = config["services"]["perf_analyzer"]["environment"]
    assert {name: unescape(value) for name, value in environment.items()} == values
    assert "environment" not in config["services"]["triton_server"]
