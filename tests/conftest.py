"""Fixtures for more than one test folder.

``wheel_install`` is shared by tests/installed (no Docker) and tests/e2e (a lab run from that venv):
built once per session, only when a test asks for it.
"""

from __future__ import annotations

import pytest
from installed.wheel_venv import WheelInstall, install_wheel


@pytest.fixture(scope="session")
def wheel_install(tmp_path_factory: pytest.TempPathFactory) -> WheelInstall:
    """tisbench from a wheel of this tree, in a new venv outside it."""
    return install_wheel(tmp_path_factory.mktemp("wheel"))
