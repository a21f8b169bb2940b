"""The stack's own volumes in the lab's design: mounted where asked, named volumes used as they are
(never created or removed), copied into volumes for a remote engine, fingerprinted in the manifest,
and told apart by compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_inputs import make_stack
from compose_oracle import lab_spec

from composer.core.design import Mount
from composer.core.errors import ConfigError
from composer.core.host_data import fingerprint, tree_size
from composer.labs.plan import plan_lab
from composer.labs.run_manifest import lab_design
from composer.render.compose import render_lab
from composer.runs.compare import compare_runs


def _stack(tmp_path: Path, volumes: str = "['./data:/data', 'cache:/cache:rw']") -> Path:
    stack = make_stack(tmp_path, f"model: seed_model\nserver:\n  volumes: {volumes}\n")
    (stack / "data").mkdir()
    (stack / "data" / "kim.json").write_text('{"weight": 0.5}')
    return stack


def test_the_server_mounts_the_stacks_volumes_after_its_models(tmp_path: Path) -> None:
    design = plan_lab(_stack(tmp_path), release="24.10", images="lab").design("lab1")

    server = design.service("triton_server")
    assert server.mounts[1:] == (
        Mount(str((tmp_path / "stack" / "data").resolve()), "/data", True, "bind"),
        Mount("cache", "/cache", False, "volume"),
    )
    assert design.external_volumes == ("cache",) and design.volume_name("cache") == "cache"
    dataset = Mount(str(tmp_path / "stack" / "dataset"), "/workspace/dataset", True)
    assert design.service("perf_analyzer").mounts == (dataset,)


def test_a_named_volume_is_external_in_the_file_and_never_the_labs_own(tmp_path: Path) -> None:
    design = plan_lab(_stack(tmp_path), release="24.10", images="lab").design("lab1")
    text = render_lab(design)

    spec = lab_spec(text, Path(design.working_dir), Path(design.config_file))
    assert "external: true" in text and spec.volumes == []  # nothing for compose or tisbench to create
    (server,) = [s for s in spec.services if s.service == "triton_server"]
    assert [(m.source, m.target, m.type) for m in server.mounts][2] == ("cache", "/cache", "volume")


def test_a_remote_engine_gets_each_bind_source_copied_into_a_volume(tmp_path: Path) -> None:
    design = plan_lab(_stack(tmp_path), release="24.10", images="lab").design("lab1", transport="copy")

    assert [(v.key, v.fill is not None, v.external) for v in design.volumes] == [
        ("cache", False, True),
        ("models", True, False),
        ("data", True, False),
        ("dataset", True, False),
    ]
    assert [m.source for m in design.service("triton_server").mounts] == ["models", "data", "cache"]


def test_a_file_cannot_travel_to_a_remote_engine_as_a_volume(tmp_path: Path) -> None:
    plan = plan_lab(_stack(tmp_path, "['./data/kim.json:/etc/kim.json']"), release="24.10", images="lab")

    with pytest.raises(ConfigError) as caught:
        plan.design("lab1", transport="copy")

    assert caught.value.message.startswith("server.volumes: ") and "is a file" in caught.value.message
    plan.design("lab1")  # a local engine bind-mounts a file as it is


def test_the_manifest_names_each_mount_with_its_contents_fingerprint(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    doc = lab_design(plan_lab(stack, release="24.10", images="lab").design("lab1"))

    data = doc["services"]["triton_server"]["mounts"][1]
    assert data["target"] == "/data" and data["host_path"] == str((stack / "data").resolve())
    assert data["fingerprint"] == fingerprint(stack / "data") and data["bytes"] == 15
    assert doc["services"]["triton_server"]["mounts"][2]["host_path"] is None  # a named volume: not ours to read


def test_fingerprints_change_with_content_and_names_and_stop_at_the_limit(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a").write_text("1")
    first = fingerprint(folder)
    (folder / "a").write_text("2")
    second = fingerprint(folder)
    (folder / "a").rename(folder / "b")

    assert len({first, second, fingerprint(folder)}) == 3
    assert fingerprint(folder, limit=0) is None and tree_size(folder) == 1


def _run(path: Path, fingerprint_value: str | None) -> Path:
    path.mkdir(parents=True)
    summary = {"model": "m", "release": "24.10", "sweep": "concurrency",
               "rows": [{"concurrency": 1, "throughput_infer_per_sec": 100.0, "p50_latency_us": 1000.0,
                         "p99_latency_us": 2000.0}]}  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summary))
    mounts = [{"target": "/data", "host_path": "/x/data", "fingerprint": fingerprint_value}]
    (path / "manifest.json").write_text(json.dumps({"lab_design": {"services": {"triton_server": {"mounts": mounts}}}}))
    return path


def test_compare_tells_apart_two_runs_that_read_different_data(tmp_path: Path) -> None:
    same = compare_runs(_run(tmp_path / "a", "sha256:1"), _run(tmp_path / "b", "sha256:1"), None)
    other = compare_runs(tmp_path / "a", _run(tmp_path / "c", "sha256:2"), None)
    unknown = compare_runs(tmp_path / "a", _run(tmp_path / "d", None), None)

    assert not [n for n in same.notes if "/data" in n]
    assert "triton_server /data: the data differ (sha256:1 vs sha256:2)" in other.notes
    assert any("cannot tell whether the data are the same" in n for n in unknown.notes)
