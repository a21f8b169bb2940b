"""The files tisbench ships (templates, the quickstart stack) and `tisbench init`, which hands out the stack."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from paths import REPO

from composer.cli.app import main
from composer.core.errors import UsageError
from composer.core.shipped import quickstart_stack, templates_dir, write_quickstart


def _init(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["init", *(str(a) for a in args)], prog_name="tisbench")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".tisbench", "__pycache__"} & set(p.relative_to(root).parts)
    }


def test_the_editable_install_finds_the_checkouts_templates_and_stacks() -> None:
    assert templates_dir() == REPO / "templates"
    assert quickstart_stack() == REPO / "stacks" / "quickstart"


def test_every_template_the_code_renders_is_in_the_shipped_folder() -> None:
    names = {p.name for p in templates_dir().glob("*.j2")}
    assert {"docker-compose.yml.j2", "report.md.j2", "report.html.j2", "matrix.html.j2"} <= names


def test_init_writes_the_quickstart_stack_into_a_new_folder(tmp_path: Path) -> None:
    result = _init(tmp_path / "stack")
    assert result.exit_code == 0, result.output
    assert _files(tmp_path / "stack") == _files(quickstart_stack())
    assert f"tisbench lab {tmp_path / 'stack'}" in result.stderr


def test_init_fills_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "stack").mkdir()
    assert _init(tmp_path / "stack").exit_code == 0
    assert (tmp_path / "stack" / "stack.yaml").is_file()


@pytest.mark.parametrize("occupied", ["folder with a file", "file"])
def test_init_leaves_what_is_there_alone_and_exits_2(tmp_path: Path, occupied: str) -> None:
    target = tmp_path / "stack"
    if occupied == "file":
        target.write_text("mine")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    result = _init(target)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("tisbench: error: ") and "DIRECTORY" in line and str(target) in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == (["stack"] if occupied == "file" else ["notes.txt", "stack"])


def test_init_under_a_missing_folder_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    result = _init(tmp_path / "absent" / "stack")
    assert result.exit_code == 2
    assert "cannot be written (No such file or directory)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failed_copy_leaves_an_empty_folder_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "stack"
    target.mkdir()
    copytree = shutil.copytree

    def disk_full_after_one_file(src: Path, dst: Path, *nested: Any, **options: Any) -> object:
        if nested:  # copytree's own call for a subfolder: it already carries the failing copy
            return copytree(src, dst, *nested, **options)
        copied: list[object] = []

        def copy(source: str, destination: str) -> None:
            if copied:
                raise OSError(errno.ENOSPC, "No space left on device")
            copied.append(shutil.copy2(source, destination))

        return copytree(src, dst, **options, copy_function=copy)

    monkeypatch.setattr(shutil, "copytree", disk_full_after_one_file)
    with pytest.raises(UsageError, match="No space left on device"):
        write_quickstart(target)
    assert list(target.iterdir()) == []
