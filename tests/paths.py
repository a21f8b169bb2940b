"""Where the test tree's inputs are, and what a missing prerequisite does: shared by every test
folder (tests/ is on sys.path through tests/conftest.py's rootdir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
FIXTURES = TESTS / "fixtures"
SYNTHETIC = FIXTURES / "synthetic"
E2E_STACKS = TESTS / "e2e" / "stacks"
README = REPO / "README.md"


def unavailable(message: str, *, ci_says: str = "CI=true: Docker tests must run") -> None:
    """A missing prerequisite: skip here, but fail under CI=true, where every test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} ({ci_says})", pytrace=False)
    pytest.skip(message)
