"""Reading stack.yaml: one mapping at a time, each error naming ``file: dotted.field``, and the
converters each field's value goes through. Pure."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from composer.core.errors import ConfigError, UsageError

T = TypeVar("T")
# docker's reference grammar: [registry[:port]/]path[:tag|@digest], lower-case path components
_REPO = r"(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
REPOSITORY_RULE = re.compile(_REPO)
REFERENCE_RULE = re.compile(_REPO + r"(?::[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})")
_SIZE = re.compile(r"(\d+)([bkmg]?)", re.IGNORECASE)
_MAX_TIMEOUT_S = 24 * 3600


class Fields:
    """Reads one mapping of stack.yaml, naming ``file: dotted.field`` in every error."""

    def __init__(self, source: str, prefix: str, data: Mapping[str, Any], allowed: tuple[str, ...]):
        self.source, self.prefix, self.data = source, prefix, data
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
                raise ConfigError(f"{source}: unknown key {self.where(str(key))!r}", hint)

    def where(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, message: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where(key)}: {message}", hint)

    def get(self, key: str, default: T, convert: Callable[[Any], T], hint: str) -> T:
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        try:
            return convert(value)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, f"{value!r} is not valid ({exc})", hint) from None
        except UsageError as exc:  # shared parsers (sweep, lab name) speak of flags; here it is the file
            raise ConfigError(exc.message, exc.hint) from None

    def section(self, key: str, allowed: tuple[str, ...]) -> Fields:
        value = self.data.get(key)
        value = {} if value is None else value
        if not isinstance(value, Mapping):
            raise self.fail(
                key, f"expected a mapping, got {type(value).__name__}", f"write {key}: followed by indented keys"
            )
        return Fields(self.source, f"{self.where(key)}.", value, allowed)


def string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError("expected a non-empty string")
    return value


def int_in(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected a whole number")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return convert


def seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number of seconds")
    if not 0 < value <= _MAX_TIMEOUT_S:
        raise ValueError(f"must be above 0 and at most {_MAX_TIMEOUT_S}")
    return float(value)


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        raise TypeError("expected a list of strings")
    items = tuple(str(v) for v in value)
    if any("\x00" in item for item in items):
        raise ValueError("an argument holds a NUL character, which no process argument can carry")
    return items


def parse_size(value: Any) -> str:
    """Docker size: bytes as a number or a string like ``1g``/``512m``."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    match = _SIZE.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError("expected a size such as 1g, 512m or a number of bytes")
    return text.lower()


def parse_image_repo(value: Any, field: str = "--image-repo") -> str:
    """A repository without tag, e.g. ``registry.example.com:5000/nvidia/tritonserver``."""
    if not isinstance(value, str) or not REPOSITORY_RULE.fullmatch(value):
        raise UsageError(
            f"{field}: {value!r} is not an image repository",
            "give [REGISTRY[:PORT]/]PATH without a tag, e.g. registry.example.com/nvidia/tritonserver",
        )
    return value


def image_ref(value: Any) -> str:
    if not isinstance(value, str) or not REFERENCE_RULE.fullmatch(value):
        raise ValueError("expected an image reference with a tag or digest, e.g. registry/repo:24.10-py3")
    return value


def host(value: Any) -> str:
    ipaddress.ip_address(string(value))
    return str(value)


def shapes(value: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if not isinstance(value, Mapping):
        raise TypeError("expected a mapping of input name to a list of dims")
    shapes = []
    for name, dims in value.items():
        if (
            not isinstance(dims, list)
            or not dims
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims)
        ):
            raise ValueError(f"shape of {name!r} must be a list of positive whole numbers")
        shapes.append((str(name), tuple(dims)))
    return tuple(shapes)


def read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})", "check the file's permissions and encoding") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path}: not valid YAML{where}", "fix the syntax or delete the file to use defaults"
        ) from None
    if data is None:
        raise ConfigError(f"{path}: is empty", "add at least one key (e.g. model: NAME) or delete the file")
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: top level must be a mapping of keys, got {type(data).__name__}", "write key: value lines"
        )
    return data


def choice(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"allowed: {', '.join(allowed)}")
    return str(value)
