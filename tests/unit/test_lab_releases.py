"""The lab release table, versions as binaries report them, and the pip platforms of a root."""

from __future__ import annotations

import pytest

from composer.core.errors import ReleaseError
from composer.core.lab_releases import LAB_RECIPES, NO_RECIPE, lab_recipe, tritonclient_analyzer, version_tuple
from composer.core.reported_versions import (
    analyzer_version_from_output,
    analyzer_version_line,
    server_version_from_log,
    version_from_pip_show,
)
from composer.images.wheels import pip_platforms


def test_every_faithful_pair_but_23_04_has_a_recipe() -> None:
    assert sorted(LAB_RECIPES) == [
        "23.07", "23.10", "23.12", "24.01", "24.02", "24.03", "24.04",
        "24.05", "24.06", "24.07", "24.08", "24.09", "24.10",
    ]
    assert "23.04" in NO_RECIPE and "Python 3.8" in NO_RECIPE["23.04"]


def test_each_release_pairs_its_own_server_with_its_own_perf_analyzer() -> None:
    for release, recipe in LAB_RECIPES.items():
        assert recipe.release == release
        assert recipe.server.wheel.project == "nvidia-pytriton"
        assert recipe.analyzer.wheel == type(recipe.analyzer.wheel)("tritonclient", recipe.server.version)
        assert recipe.analyzer.version == recipe.server.version
    assert {r: LAB_RECIPES[r].server.wheel.version for r in ("23.07", "24.03", "24.10")} == {
        "23.07": "0.3.0", "24.03": "0.5.6", "24.10": "0.7.0",
    }
    assert LAB_RECIPES["24.10"].analyzer.version == "2.51.0"


def test_what_a_tritonclient_perf_analyzer_needs_follows_what_it_links() -> None:
    old = tritonclient_analyzer("2.33.0")
    assert old.suite == "bullseye" and "libssl1.1" in old.debs
    middle = tritonclient_analyzer("2.44.0")
    assert middle.suite == "bookworm" and "libb64-0d" in middle.debs
    assert [lib.wheel.project for lib in middle.libs] == ["nvidia-cuda-runtime-cu12"]
    assert middle.libs[0].lib_dir == "nvidia/cuda_runtime/lib/"
    assert middle.binary == "tritonclient-2.44.0.data/data/bin/perf_analyzer"
    new = tritonclient_analyzer("2.52.0")
    assert new.suite == "trixie" and not new.libs
    assert tritonclient_analyzer("2.37.0.9383150").version == "2.37.0"
    with pytest.raises(ValueError):
        tritonclient_analyzer("2.31.0")


def test_fingerprints_change_with_the_recipe_and_differ_per_image() -> None:
    a, b = LAB_RECIPES["24.03"], LAB_RECIPES["24.10"]
    assert a.server_fingerprint() != b.server_fingerprint()
    assert a.server_fingerprint() != a.analyzer_fingerprint()
    assert a.server_fingerprint() == LAB_RECIPES["24.03"].server_fingerprint()


def test_a_release_without_recipe_says_why_and_names_the_lab_releases() -> None:
    with pytest.raises(ReleaseError) as caught:
        lab_recipe("23.04")
    assert "Python 3.8" in caught.value.message and "23.07" in (caught.value.hint or "")
    with pytest.raises(ReleaseError):
        lab_recipe("22.01")


def test_version_tuple_keeps_three_numeric_parts() -> None:
    assert version_tuple("2.37.0.9383150") == (2, 37, 0)
    assert version_tuple("2.36.0") < version_tuple("2.51.0")
    with pytest.raises(ValueError):
        version_tuple("2.x")


SERVER_LOG = """\
I1202 00:08:51.982078 1 tritonserver.cc:2598]
+----------------------------------+------------+
| Option                           | Value      |
+----------------------------------+------------+
| server_id                        | triton     |
| server_version                   | 2.51.0     |
error: creating server: Internal - failed to stat file /nonexistent
"""


def test_server_version_is_read_from_the_option_table() -> None:
    assert server_version_from_log(SERVER_LOG) == "2.51.0"
    assert server_version_from_log("error: creating server") is None


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("Perf Analyzer Version 2.36.0 (commit 1a2b3c4)\n", "2.36.0"),
        ("Perf Analyzer Version 2.38.0.69485441 (commit 1a2b3c4)\n", "2.38.0"),
        ("Perf Analyzer Version  (commit 1a2b3c4)\n", None),  # built without a version
        ("Perf Analyzer Version 0.0.0 (commit unknown)\n", None),  # the standalone PyPI builds
        ("perf_analyzer: unrecognized option '--version'\nUsage: perf_analyzer [options]\n", None),
    ],
)
def test_analyzer_version_from_its_version_output(output: str, version: str | None) -> None:
    assert analyzer_version_from_output(output) == version


def test_the_version_line_is_kept_as_printed() -> None:
    assert analyzer_version_line("x\nPerf Analyzer Version 2.36.0 (commit 1a2b)\n") == (
        "Perf Analyzer Version 2.36.0 (commit 1a2b)"
    )
    assert analyzer_version_line("nothing") is None


def test_version_from_pip_show() -> None:
    assert version_from_pip_show("Name: tritonclient\nVersion: 2.37.0.9383150\nSummary: x\n") == "2.37.0"
    assert version_from_pip_show("WARNING: Package(s) not found: perf-analyzer\n") is None


def test_pip_platforms_cover_every_older_manylinux_and_the_legacy_names() -> None:
    args = pip_platforms(36)
    platforms = args[1::2]
    assert set(args[::2]) == {"--platform"}
    assert {"manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"} <= set(platforms)
    assert "manylinux_2_35_x86_64" in platforms and "manylinux_2_38_x86_64" not in platforms
    assert platforms[-1] == "manylinux_2_36_x86_64"
