"""The real `docker compose config`, for tests that check rendered files (no engine needed)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from paths import unavailable


def require_compose() -> None:
    """Skip without Docker Compose v2, except under CI=true, where its absence is a failure."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0:
        unavailable("docker compose is not installed", ci_says="CI=true requires it")


def compose_config(file: Path, *, project: str | None = None) -> dict[str, Any]:
    """What compose makes of ``file`` (interpolated, normalised), as JSON; asserts it is accepted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    argv = ["docker", "compose", *(["-p", project] if project else []), "-f", str(file), "config", "--format", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result
