"""What the engine's start errors mean, read as the engine words them (runc, dockerd 20.10–28)."""

from __future__ import annotations

import pytest

from composer.engine.create import refused_ulimit

RUNC_MEMLOCK = (
    "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container "
    "process: error during container init: error setting rlimit type 8: operation not permitted: unknown"
)


@pytest.mark.parametrize(
    ("message", "name"),
    [
        (RUNC_MEMLOCK, "memlock"),
        ("error setting rlimit type 3: operation not permitted", "stack"),
        ("error setting rlimit type 7: invalid argument", "nofile"),
        ("error setting rlimit type 99: x", "type 99"),
        ("driver failed programming external connectivity: port is already allocated", None),
    ],
)
def test_refused_ulimit_names_the_limit(message: str, name: str | None) -> None:
    assert refused_ulimit(message) == name
