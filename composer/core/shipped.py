"""Files tisbench ships beside its code: the Jinja templates and the quickstart stack.

They stay at the repository's top (``templates/``, ``stacks/``); pyproject.toml makes those folders
the packages ``composer.templates`` and ``composer.stacks``, so a wheel (``pip install .``, pipx)
carries them and an editable install finds them where they are. Every reader asks here.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from composer.core.errors import UsageError


def shipped_dir(package: str) -> Path:
    """The folder of the shipped package ``composer.<package>``, on disk.

    Jinja's FileSystemLoader and Docker's bind mounts need real folders, so an install that is
    not files on disk (a zip) is a bug in how tisbench was installed, not a user's input.
    """
    root = files(f"composer.{package}")
    if not isinstance(root, Path):
        raise RuntimeError(f"composer.{package} is not a folder on disk ({root!r}); install tisbench with pip")
    return root


def templates_dir() -> Path:
    """The Jinja templates: compose and swarm files, run and matrix reports."""
    return shipped_dir("templates")


def quickstart_stack() -> Path:
    """The quickstart stack: the seed model, its input data and stack.yaml."""
    return shipped_dir("stacks") / "quickstart"


def write_quickstart(directory: Path) -> None:
    """Copy the quickstart stack into ``directory``, new or empty; a failure leaves it as it was."""
    existed = directory.is_dir()
    if directory.exists() and (not existed or any(directory.iterdir())):
        raise UsageError(f"DIRECTORY {directory}: exists and is not an empty folder", "name a new or empty folder")
    try:
        directory.mkdir(exist_ok=True)
        # Not the byte code pip compiles next to the installed model.py, nor a checkout's run areas (.tisbench/)
        shutil.copytree(quickstart_stack(), directory, ignore=shutil.ignore_patterns("__pycache__", ".*"),
                        dirs_exist_ok=True)
    except BaseException as exc:
        _undo(directory, existed)
        if isinstance(exc, OSError):
            raise UsageError(
                f"DIRECTORY {directory}: cannot be written ({exc.strerror or exc})", "name a folder in a writable place"
            ) from None
        raise


def _undo(directory: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(directory, ignore_errors=True)
    elif directory.is_dir():
        for child in directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
