"""What the user's own server image is made of, as stack.yaml says: python requirements installed on
top of the release's server image, or a Dockerfile built from it. Read and checked here. Pure
(the files it names are read, nothing runs)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type names only
    from composer.core import stack_fields as sf

KEYS = ("requirements", "build")
DERIVED_RECIPE = "1"  # bump when composer/images/derived.py changes how it installs: older images are made anew
BUILD_ARGS = ("BASE_IMAGE", "RELEASE")  # what every server.build receives, so one Dockerfile serves each release


@dataclass(frozen=True)
class Build:
    context: str  # an absolute directory
    dockerfile: str  # relative to the context, as docker build takes it
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServerImage:
    requirements: tuple[str, ...] = ()  # pip requirement lines, in order
    requirements_source: str | None = None  # the requirements.txt they were read from
    build: Build | None = None

    @property
    def derived(self) -> bool:
        return bool(self.requirements) or self.build is not None

    def requirements_hash(self, base_id: str) -> str:
        """What a derived image is tagged by: the base image it was built on and the requirements."""
        text = "\n".join([DERIVED_RECIPE, base_id, *self.requirements])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _requirement_lines(text: str) -> tuple[str, ...]:
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise ValueError(f"{line!r}: pip options are not taken (tisbench fetches wheels itself): list requirements")
        lines.append(line)
    return tuple(lines)


def _requirements(value: Any, directory: Path) -> tuple[tuple[str, ...], str | None]:
    if isinstance(value, str):
        path = (directory / value).resolve()
        if not path.is_file():
            raise ValueError(f"{value}: no such requirements file ({path})")
        return _requirement_lines(path.read_text(encoding="utf-8")), str(path)
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() and "\n" not in v for v in value):
        return _requirement_lines("\n".join(value)), None
    raise TypeError("expected a requirements.txt path or a list of requirement strings")


def _build(value: Any, directory: Path) -> Build:
    if not isinstance(value, Mapping):
        raise TypeError("expected a mapping: {context: DIR, dockerfile: Dockerfile, args: {NAME: value}}")
    unknown = set(value) - {"context", "dockerfile", "args"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}: the keys are context, dockerfile, args")
    context_value = value.get("context")
    if not isinstance(context_value, str) or not context_value:
        raise ValueError("context is needed: a directory relative to the stack")
    context = (directory / context_value).resolve()
    if not context.is_dir():
        raise ValueError(f"context {context_value}: no such directory ({context})")
    dockerfile = value.get("dockerfile", "Dockerfile")
    if not isinstance(dockerfile, str) or not (context / dockerfile).is_file():
        raise ValueError(f"dockerfile {dockerfile!r}: no such file in {context}")
    args = value.get("args") or {}
    if not isinstance(args, Mapping) or not all(isinstance(k, str) and isinstance(v, str | int | float)
                                                for k, v in args.items()):  # fmt: skip
        raise ValueError("args is a mapping of NAME: value")
    taken = set(args) & set(BUILD_ARGS)
    if taken:
        raise ValueError(f"args: {sorted(taken)[0]} is tisbench's to pass (the release's server image, the release)")
    return Build(str(context), dockerfile, tuple((str(k), str(v)) for k, v in args.items()))


def read(fields: sf.Fields, directory: Path) -> ServerImage:
    none: tuple[tuple[str, ...], str | None] = ((), None)
    requirements, source = fields.get(
        "requirements", none, lambda v: _requirements(v, directory), "a requirements.txt path or [pillow, …]"
    )
    build = fields.get("build", None, lambda v: _build(v, directory), "e.g. build: {context: docker}")
    if build is not None and requirements:
        raise fields.fail("build", "and requirements are both set", "install the requirements in the Dockerfile")
    return ServerImage(requirements, source, build)
