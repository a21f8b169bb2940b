"""Lab names: the rule a name follows, the default one a stack directory gives, and the generated
``<base>-<hex>`` ones, all within one length limit. Pure."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from composer.core.errors import UsageError

LAB_NAME_MAX = 40
NAME_RULE = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{LAB_NAME_MAX - 1}}}")
SUFFIX_HEX_BYTES = 2  # a generated name ends in "-" and this many random bytes in hex
GENERATED_BASE_MAX = LAB_NAME_MAX - 1 - 2 * SUFFIX_HEX_BYTES  # so "<base>-<hex>" is a lab name itself
DEFAULT_NAME_MAX = 30  # a directory's name, shortened: lab names made from it stay easy to read and type
RUN_AREA = ".tisbench"  # <stack>/.tisbench/<lab>/: where a lab's rendered file is kept


def generated_name(base: str, taken: Callable[[str], bool]) -> str:
    """``<base>-<hex>``, shortened so it is a lab name itself, that ``taken`` does not claim."""
    while True:
        name = f"{base[:GENERATED_BASE_MAX]}-{secrets.token_hex(SUFFIX_HEX_BYTES)}"
        if not taken(name):
            return name


def parse_lab_name(value: Any, field: str = "--name") -> str:
    text = value if isinstance(value, str) else ""
    if not NAME_RULE.fullmatch(text):
        raise UsageError(
            f"{field}: {value!r} is not a lab name",
            f"use 1-{LAB_NAME_MAX} lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )
    return text


def default_stack_name(directory: Path) -> str:
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", directory.resolve().name.lower()).strip("-_")
    return (cleaned or "lab")[:DEFAULT_NAME_MAX]
