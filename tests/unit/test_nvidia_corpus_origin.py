"""The NVIDIA corpus (tests/e2e/stacks/nvidia) is verbatim: every model file is listed in its
case's ORIGIN.md and hashes to the upstream git blob recorded there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from paths import E2E_STACKS

CORPUS = E2E_STACKS / "nvidia"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "ORIGIN.md").is_file())
REQUIRED = {
    "add_sub", "auto_complete", "empty_config", "bls", "decoupled", "ensemble", "sequence",
    "optional", "custom_metrics", "instances", "slow_loading", "rank5_b64",
}  # fmt: skip


def _git_blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _origin_rows(case: str) -> dict[str, dict[str, str]]:
    """ORIGIN.md's table: stack file → its columns (repo, ref, commit, path, blob, change)."""
    lines = [line for line in (CORPUS / case / "ORIGIN.md").read_text().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[1:]]
    return {row["file"]: row for row in rows}


def test_the_corpus_covers_what_issue_14_asks() -> None:
    assert set(CASES) >= REQUIRED


@pytest.mark.parametrize("case", CASES)
def test_every_model_file_is_listed_and_matches_its_upstream_blob(case: str) -> None:
    rows = _origin_rows(case)
    models = CORPUS / case / "models"
    files = sorted(str(p.relative_to(CORPUS / case)) for p in models.rglob("*") if p.is_file())
    assert files, f"{case} has no model files"
    unlisted = [f for f in files if f not in rows]
    assert not unlisted, f"{case}/ORIGIN.md does not list {unlisted}"
    for file in files:
        row = rows[file]
        if row["blob"] == "—":  # an addition, which ORIGIN.md must explain
            assert row["change"].startswith("added:"), row
            continue
        assert row["change"] == "none", f"{case}/{file} is marked changed: {row['change']}"
        upstream = f"{row['repo']}@{row['ref']}:{row['path']}"
        assert _git_blob_id(CORPUS / case / file) == row["blob"], f"{case}/{file} differs from {upstream}"
