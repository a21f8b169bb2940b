"""What an engine refused, remembered for a week per engine key, in the user's cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.engine import refusals


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def test_a_refusal_is_known_for_a_week_for_that_engine_only(tmp_path: Path) -> None:
    refusals.remember("unix:///var/run/docker.sock|28.2.2|e6534b4|6.18", "memlock", now=1000.0)
    assert refusals.cache_file() == tmp_path / "tisbench" / "engine-refusals.json"
    assert refusals.known("unix:///var/run/docker.sock|28.2.2|e6534b4|6.18", now=1000.0 + 3600) == {"memlock"}
    assert refusals.known("unix:///var/run/docker.sock|29.0.0|abc|6.18", now=1000.0) == set()  # upgraded: ask anew
    assert refusals.known("unix:///var/run/docker.sock|28.2.2|e6534b4|6.18", now=1000.0 + refusals.TTL_S) == set()


def test_an_unreadable_cache_is_no_knowledge(tmp_path: Path) -> None:
    (tmp_path / "tisbench").mkdir()
    refusals.cache_file().write_text("{not json")
    assert refusals.known("k") == set()
    refusals.remember("k", "memlock")
    assert refusals.known("k") == {"memlock"}
