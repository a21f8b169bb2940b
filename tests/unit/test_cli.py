"""The render and check commands, as a user meets them: output, files, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from bad_inputs import add_model, make_stack
from click.testing import CliRunner, Result

from composer import __version__
from composer.cli.app import main

TISBENCH = Path(sys.executable).parent / "tisbench"


@pytest.fixture(autouse=True)
def _no_tisbench_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("TISBENCH_")]:
        monkeypatch.delenv(key)


def _invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, prog_name="tisbench")


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tisbench: error: ")
    assert result.stdout == ""
    return lines[0]


def test_render_prints_the_compose_file(tmp_path: Path) -> None:
    result = _invoke("render", make_stack(tmp_path), "--release", "23.08")

    assert result.exit_code == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["name"] == "stack"
    assert doc["services"]["triton_server"]["image"] == "nvcr.io/nvidia/tritonserver:23.08-py3"
    assert result.stderr == ""


def test_render_name_flag_sets_the_project(tmp_path: Path) -> None:
    result = _invoke("render", make_stack(tmp_path), "--name", "other-lab")

    assert yaml.safe_load(result.stdout)["name"] == "other-lab"


def test_render_to_a_file_writes_it_and_says_so(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    output = tmp_path / "out" / "nested" / "lab.yml"

    result = _invoke("render", stack, "-o", output)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"wrote {output}\n"
    assert output.read_text(encoding="utf-8") == _invoke("render", stack).stdout
    assert os.listdir(output.parent) == ["lab.yml"]


def test_render_to_a_file_replaces_it_whole(tmp_path: Path) -> None:
    output = tmp_path / "lab.yml"
    output.write_text("old content that is longer than nothing\n" * 1000, encoding="utf-8")

    _invoke("render", make_stack(tmp_path), "-o", output)

    assert output.read_text(encoding="utf-8").startswith("# Rendered by tisbench")
    assert sorted(os.listdir(tmp_path)) == ["lab.yml", "stack"]


def test_render_replace_failure_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "lab.yml"
    output.write_text("old\n", encoding="utf-8")

    def fail(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr("composer.core.fsutil.os.replace", fail)
    result = _invoke("render", make_stack(tmp_path), "-o", output)

    assert result.exit_code != 0
    assert output.read_text(encoding="utf-8") == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["lab.yml", "stack"]


def test_render_bad_input_writes_no_file(tmp_path: Path) -> None:
    output = tmp_path / "out" / "lab.yml"

    result = _invoke("render", make_stack(tmp_path, "modle: x\n"), "-o", output)

    assert "did you mean 'model'" in _one_error_line(result)
    assert not output.parent.exists()


def test_render_into_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "existing_file").write_text("x", encoding="utf-8")

    line = _one_error_line(_invoke("render", make_stack(tmp_path), "-o", tmp_path / "existing_file" / "out.yml"))

    assert "existing_file is a file, not a directory" in line
    assert (tmp_path / "existing_file").read_text(encoding="utf-8") == "x"


def test_render_onto_a_directory(tmp_path: Path) -> None:
    line = _one_error_line(_invoke("render", make_stack(tmp_path), "-o", tmp_path))

    assert "is a directory" in line


def test_render_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(TISBENCH), "render", str(make_stack(tmp_path)), "-o", "/proc/tisbench-out.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("release", "rule"),
    [("23.02", "older than 23.03"), ("23.8", "YY.MM"), ("abc", "YY.MM"), ("", "YY.MM"), ("23.13", "YY.MM")],
)
@pytest.mark.parametrize("command", ["render", "check"])
def test_bad_release_is_one_line_naming_the_rule(tmp_path: Path, command: str, release: str, rule: str) -> None:
    line = _one_error_line(_invoke(command, make_stack(tmp_path), "--release", release))

    assert "--release" in line and rule in line


def test_release_from_the_environment(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)

    assert "release    23.08" in _invoke("check", stack, env={"TISBENCH_RELEASE": "23.08"}).stdout
    flag_wins = _invoke("check", stack, "--release", "24.01", env={"TISBENCH_RELEASE": "23.08"})
    assert "release    24.01" in flag_wins.stdout


def test_lab_images_for_a_release_without_them_names_the_lab_releases(tmp_path: Path) -> None:
    from composer.core.lab_releases import LAB_RECIPES

    line = _one_error_line(_invoke("render", make_stack(tmp_path), "--images", "lab", "--release", "23.08"))

    assert "--images lab" in line and "23.08" in line
    assert all(release in line for release in LAB_RECIPES)


def test_unknown_images_choice_is_one_line(tmp_path: Path) -> None:
    line = _one_error_line(_invoke("check", make_stack(tmp_path), "--images", "docker"))

    assert "'--images'" in line and "ngc" in line and "tisbench check --help" in line


def test_check_describes_the_plan(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, 'release: "23.08"\nanalyzer:\n  concurrency: "1:4"\n')

    result = _invoke("check", stack)

    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["stack"] == str(stack.resolve())
    assert lines["model"] == "seed_model  (of seed_model)"
    assert lines["release"] == "23.08  (Triton server 2.37.0)"
    assert lines["images"] == "nvcr.io/nvidia/tritonserver:23.08-py3  +  nvcr.io/nvidia/tritonserver:23.08-py3-sdk"
    assert lines["load"] == "concurrency 1:4:1, http, 200 requests per window"
    assert lines["profile"] == "per-request export off (perf_analyzer 2.37.0 has none)"


def test_check_without_stack_yaml_says_defaults(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    (stack / "stack.yaml").unlink()

    assert "(no stack.yaml: defaults)" in _invoke("check", stack).stdout


def test_check_model_flag_chooses_among_several(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    (stack / "stack.yaml").unlink()
    add_model(stack, "alpha")

    assert "none is chosen" in _one_error_line(_invoke("check", stack))
    assert "model      alpha  (of alpha, seed_model)" in _invoke("check", stack, "-m", "alpha").stdout


def test_stack_dir_defaults_to_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = make_stack(tmp_path)
    monkeypatch.chdir(stack)

    result = _invoke("check")

    assert result.exit_code == 0, result.stderr
    assert f"stack      {stack.resolve()}" in result.stdout


def test_stack_dir_defaults_to_the_current_directory_in_a_real_process(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)

    done = subprocess.run([str(TISBENCH), "render"], cwd=stack, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["services"]["triton_server"]["volumes"][0]["source"] == str(
        stack.resolve() / "models"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--release", "abc"],
        ["render", "--images", "lab", "--release", "23.08"],
        ["check", "--nope"],
        ["render", "-o", "existing_file/out.yml"],
        ["nope"],
    ],
    ids=["bad-release", "no-lab-images", "unknown-option", "output-under-file", "unknown-command"],
)
def test_real_process_prints_one_line_and_no_traceback(tmp_path: Path, args: list[str]) -> None:
    stack = make_stack(tmp_path)
    (stack / "existing_file").write_text("x", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TISBENCH_")}

    done = subprocess.run(
        [str(TISBENCH), *args], cwd=stack, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("tisbench: error: ")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_version() -> None:
    result = _invoke("--version")

    assert result.exit_code == 0
    assert result.stdout == f"tisbench, version {__version__}\n"


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    result = _invoke("--help")

    assert result.exit_code == 0
    assert "render" in result.stdout and "check" in result.stdout and "Exit codes:" in result.stdout


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command: str) -> None:
    result = _invoke(command, "--help")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: tisbench {command} ")
    cmd = main.commands[command]
    assert isinstance(cmd, click.Command) and cmd.help and cmd.help.strip()
    assert len(result.stdout.splitlines()) > 3


def test_passthrough_arguments_are_not_taken_for_an_empty_positional() -> None:
    from composer.cli.options import reclaim_passthrough

    kw: dict[str, object] = {"extra": ("999",)}
    assert reclaim_passthrough(Path("--stability-percentage"), kw)
    assert kw["extra"] == ("--stability-percentage", "999")
    kept: dict[str, object] = {"extra": ()}
    assert not reclaim_passthrough("mylab", kept) and kept["extra"] == ()
    assert not reclaim_passthrough(None, kept)


@pytest.mark.parametrize(
    "command", [["lab"], ["tune"], ["matrix", "--releases", "24.10"]], ids=["lab", "tune", "matrix"]
)
def test_lab_tune_and_matrix_refuse_a_decoupled_model_over_http_before_docker(
    tmp_path: Path, command: list[str]
) -> None:
    stack = make_stack(tmp_path)
    config = stack / "models" / "seed_model" / "config.pbtxt"
    config.write_text(config.read_text() + "\nmodel_transaction_policy { decoupled: true }\n")

    result = _invoke(*command, stack, "--images", "lab", "--protocol", "http", env={"DOCKER_HOST": "unix:///nonexistent"})

    assert result.exit_code == 2, result.stderr
    assert "is decoupled" in _one_error_line(result)


def test_check_names_the_transport_lab_gives_a_decoupled_model(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    config = stack / "models" / "seed_model" / "config.pbtxt"
    config.write_text(config.read_text() + "\nmodel_transaction_policy { decoupled: true }\n")

    result = _invoke("check", stack, "--images", "lab")

    assert result.exit_code == 0, result.stderr
    assert ", grpc with --streaming (the model is decoupled), " in result.stdout
