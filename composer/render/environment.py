"""The one jinja2 Environment for every template tisbench renders: compose and swarm files, reports.

StrictUndefined everywhere; HTML templates (``*.html.j2``) are autoescaped, YAML and Markdown are
not (YAML values pass through the ``y`` filter instead).
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from composer.core.shipped import templates_dir


def yaml_scalar(value: Any) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, anything else escaped by code point.

    Not json.dumps: it writes characters beyond U+FFFF as surrogate pairs, which compose
    rejects and PyYAML decodes to lone surrogates.
    """
    out = []
    for char in str(value).replace("$", "$$"):
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=True,
    )
    env.filters["y"] = yaml_scalar
    return env
