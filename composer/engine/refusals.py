"""What an engine refused before: the advisory ulimits it cannot grant, remembered per engine.

Learning that an engine cannot grant memlock=-1 costs a failed container start (~0.8 s here: runc
refuses at start, after the create); every lab after the first on that engine would pay it again.
The answer is kept under ``$XDG_CACHE_HOME/tisbench/`` (default ``~/.cache/tisbench/``) for a week,
keyed by the engine's URL and its version facts, so a different or upgraded engine is asked anew.
Only tisbench's own advice is ever skipped this way; a ulimit the stack sets is always asked for.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import docker

from composer.core.fsutil import write_atomic
from composer.engine.client import engine_facts
from composer.engine.host import docker_host

TTL_S = 7 * 24 * 3600


def cache_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tisbench" / "engine-refusals.json"


def engine_key(client: docker.DockerClient) -> str:
    """The engine's URL and what its /version says of the daemon and the kernel it runs on."""
    facts = engine_facts(client)
    return "|".join([docker_host(), *(str(facts.get(k, "?")) for k in ("Version", "GitCommit", "KernelVersion"))])


def _read() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def known(key: str, now: float | None = None) -> set[str]:
    """The ulimits this engine refused within the last week."""
    entry = _read().get(key) or {}
    fresh = (now or time.time()) - float(entry.get("seen", 0)) < TTL_S
    return set(entry.get("ulimits", [])) if fresh else set()


def remember(key: str, ulimit: str, now: float | None = None) -> None:
    """Keep the refusal; a cache that cannot be written only costs the next lab the same failed start."""
    data = _read()
    entry = data.get(key) or {}
    data[key] = {"ulimits": sorted({*entry.get("ulimits", []), ulimit}), "seen": now or time.time()}
    try:
        write_atomic(cache_file(), json.dumps(data, indent=2) + "\n")
    except OSError:
        pass


def known_here(timeout_s: float = 5.0) -> frozenset[str]:
    """What the engine this process would use refused before, when it answers; nothing when no
    engine answers (`tisbench render` works without Docker and then asks for every advice)."""
    from composer.core.errors import TisbenchError
    from composer.engine.client import connect

    try:
        client = connect(timeout_s)
    except TisbenchError:
        return frozenset()
    try:
        return frozenset(known(engine_key(client)))
    finally:
        client.close()
