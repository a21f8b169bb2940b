"""Pure logic of the lab image build: mirrors, tags, the release table, preconditions, wheel layout."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import docker
import pytest

from composer.core.errors import ImageBuildError
from composer.core.lab_releases import LAB_RECIPES, lab_image_tags
from composer.core.labels import RECIPE_LABEL
from composer.engine.images import check_engine
from composer.images.lab_images import (
    HostFacts,
    check_host,
    check_placed,
    image_specs,
    image_state,
    lib_place,
    listing,
    sdk_spec,
    server_spec,
    server_tree_path,
    write_image_tar,
)
from composer.images.rootfs import (
    AptSource,
    BaseRoot,
    debian_mirror,
    parse_deb822_sources,
    parse_one_line_sources,
    pick_mirror,
)

DEB822 = """\
Types: deb
# a snapshot this machine does not use
URIs: http://mirror.example.org/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
"""

DEB822_SECURITY_FIRST = """\
Types: deb-src deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm

Types: deb
URIs:
 http://first.example.org/debian
 http://second.example.org/debian
Suites: bookworm
"""

ONE_LINE = """\
# deb http://commented.example.org/debian bookworm main
deb-src http://src.example.org/debian bookworm main
deb http://security.example.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://plain.example.org/debian/ bookworm main
"""


def test_deb822_first_entry_is_the_mirror_without_trailing_slash() -> None:
    assert pick_mirror(parse_deb822_sources(DEB822)) == "http://mirror.example.org/debian"


def test_deb822_skips_security_disabled_stanzas_and_reads_continuation_lines() -> None:
    sources = parse_deb822_sources(DEB822_SECURITY_FIRST)
    assert [s.uri for s in sources] == [
        "http://security.example.org/debian-security",
        "http://first.example.org/debian",
        "http://second.example.org/debian",
    ]
    assert pick_mirror(sources) == "http://first.example.org/debian"


def test_one_line_sources_ignore_comments_deb_src_and_options() -> None:
    sources = parse_one_line_sources(ONE_LINE)
    assert sources == [
        AptSource("http://security.example.org/debian-security", ("bookworm-security",)),
        AptSource("http://plain.example.org/debian", ("bookworm",)),
    ]
    assert pick_mirror(sources) == "http://plain.example.org/debian"


def test_security_suite_on_a_plain_uri_is_not_a_mirror() -> None:
    assert pick_mirror([AptSource("http://a.example.org/debian", ("bookworm-security",))]) is None


def test_debian_mirror_prefers_sources_d_then_falls_back_to_sources_list(tmp_path: Path) -> None:
    sources_d = tmp_path / "sources.list.d"
    sources_d.mkdir()
    sources_list = tmp_path / "sources.list"
    sources_list.write_text(ONE_LINE)
    assert debian_mirror(sources_d, sources_list) == "http://plain.example.org/debian"
    (sources_d / "debian.sources").write_text(DEB822)
    (sources_d / "other.list.disabled").write_text("deb http://ignored.example.org/debian bookworm main\n")
    assert debian_mirror(sources_d, sources_list) == "http://mirror.example.org/debian"


def test_no_mirror_is_an_image_build_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError) as caught:
        debian_mirror(tmp_path / "missing.d", tmp_path / "missing.list")
    assert "no Debian mirror" in caught.value.message
    assert caught.value.hint


def test_lab_image_tags_name_server_and_sdk_apart_from_ngc() -> None:
    assert lab_image_tags("24.10") == ("tisbench-lab/tritonserver:24.10-py3", "tisbench-lab/tritonserver:24.10-py3-sdk")


@pytest.mark.parametrize(
    ("facts", "expected", "hint"),
    [
        (HostFacts(euid=1000, debootstrap="/usr/sbin/debootstrap", pip=True), "needs root", "sudo"),
        (HostFacts(euid=0, debootstrap=None, pip=True), "debootstrap is not installed", "apt-get install debootstrap"),
        (HostFacts(euid=0, debootstrap="/usr/sbin/debootstrap", pip=False), "pip is not available", "ensurepip"),
    ],
)
def test_missing_precondition_is_one_line_with_hint(facts: HostFacts, expected: str, hint: str) -> None:
    with pytest.raises(ImageBuildError) as caught:
        check_host(facts)
    assert expected in caught.value.message
    assert hint in (caught.value.hint or "")
    assert "\n" not in caught.value.one_line()


def test_a_ready_host_passes() -> None:
    check_host(HostFacts(euid=0, debootstrap="/usr/sbin/debootstrap", pip=True))


def test_unreachable_engine_is_an_image_build_error() -> None:
    client = docker.DockerClient(base_url="unix:///nonexistent/tisbench-test.sock", version="1.41")
    with pytest.raises(ImageBuildError) as caught:
        check_engine(client)
    assert "unreachable" in caught.value.message


def test_server_tree_keeps_bin_backends_and_libs_and_only_the_311_stub() -> None:
    assert server_tree_path("pytriton/tritonserver/bin/tritonserver") == "opt/tritonserver/bin/tritonserver"
    assert (
        server_tree_path("pytriton/tritonserver/backends/python/libtriton_python.so")
        == "opt/tritonserver/backends/python/libtriton_python.so"
    )
    assert (
        server_tree_path("pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub")
        == "opt/tritonserver/backends/python/triton_python_backend_stub"
    )
    assert server_tree_path("pytriton/tritonserver/python_backend_stubs/3.13/triton_python_backend_stub") is None
    assert server_tree_path("nvidia_pytriton.libs/libtritonserver-0d23918a.so") == (
        "opt/tritonserver/lib/libtritonserver-0d23918a.so"
    )
    assert server_tree_path("pytriton/client/client.py") is None
    assert server_tree_path("pytriton/tritonserver/bin/") is None


def test_sdk_image_holds_the_releases_own_binary_and_cudart_on_the_library_path() -> None:
    spec = sdk_spec(LAB_RECIPES["23.07"])
    binary, cudart = spec.parts
    assert binary.place("tritonclient-2.36.0.data/data/bin/perf_analyzer") == "usr/local/bin/perf_analyzer"
    assert binary.place("tritonclient-2.36.0.data/data/bin/perf_client") is None
    assert binary.required == "usr/local/bin/perf_analyzer"
    assert cudart.wheel.project == "nvidia-cuda-runtime-cu12"
    assert cudart.place("nvidia/cuda_runtime/lib/libcudart.so.12") == "opt/perf_analyzer/lib/libcudart.so.12"
    assert spec.base.suite == "bookworm" and "libb64-0d" in spec.base.packages
    assert "LD_LIBRARY_PATH=/opt/perf_analyzer/lib" in spec.env


def test_lib_place_takes_only_shared_libraries_directly_in_the_dir() -> None:
    place = lib_place("nvidia/cuda_runtime/lib/")
    assert place("nvidia/cuda_runtime/lib/__init__.py") is None
    assert place("nvidia/cuda_runtime/include/cuda.h") is None
    assert place("nvidia/cuda_runtime/lib/sub/libx.so") is None


def test_image_changes_set_environment_workdir_and_the_labels_known_before_a_probe() -> None:
    server, sdk = image_specs("24.10")
    changes = server.changes()
    assert "ENV LD_LIBRARY_PATH=/opt/tritonserver/lib" in changes
    assert any(c.startswith("ENV PATH=/opt/tritonserver/bin:") for c in changes)
    assert "WORKDIR /opt/tritonserver" in changes
    assert 'LABEL tisbench.kind="server"' in changes
    assert 'LABEL tisbench.server-wheel="nvidia-pytriton==0.7.0"' in changes
    sdk_changes = sdk.changes()
    assert "WORKDIR /workspace" in sdk_changes
    assert 'LABEL tisbench.perf-analyzer-wheel="tritonclient==2.51.0"' in sdk_changes
    assert 'LABEL tisbench.lab-image="true"' in sdk_changes and 'LABEL tisbench.release="24.10"' in sdk_changes
    # versions and the recipe's fingerprint come only after the binaries answered (image_probe)
    assert not any("version" in c or RECIPE_LABEL in c for c in sdk_changes + changes)


def test_an_image_built_by_another_recipe_is_stale() -> None:
    server, _ = image_specs("24.10")
    assert image_state(None, server) == "missing"
    assert image_state({"tisbench.server-version": "2.51.0"}, server) == "stale"  # before recipes had labels
    assert image_state({RECIPE_LABEL: "0123456789abcdef"}, server) == "stale"
    assert image_state({RECIPE_LABEL: server.fingerprint}, server) == "current"


def test_listing_shows_the_recipe_and_what_each_image_holds() -> None:
    server, sdk = image_specs("24.10")
    old_sdk = {"tisbench.perf-analyzer-version": "2.60.0"}
    row = listing("24.10", [{RECIPE_LABEL: server.fingerprint, "tisbench.server-version": "2.51.0"}, old_sdk])
    assert row["server"]["recipe"] == "2.51.0 (nvidia-pytriton 0.7.0)"
    assert row["server"]["image"] == "built: 2.51.0"
    assert row["perf_analyzer"]["recipe"] == "2.51.0 (tritonclient 2.51.0)"
    assert row["perf_analyzer"]["state"] == "stale" and "2.60.0" in row["perf_analyzer"]["image"]
    assert listing("24.10", [None, None])["server"]["image"] == "missing"


def test_a_wheel_without_the_required_file_fails_the_build(tmp_path: Path) -> None:
    spec = server_spec(LAB_RECIPES["24.10"])
    wheel = tmp_path / "nvidia_pytriton-0.7.0-py3-none-any.whl"
    check_placed(spec, [wheel], [{"opt/tritonserver/backends/python/triton_python_backend_stub"}])
    with pytest.raises(ImageBuildError, match="no /opt/tritonserver/backends/python/triton_python_backend_stub"):
        check_placed(spec, [wheel], [{"opt/tritonserver/bin/tritonserver"}])
    with pytest.raises(ImageBuildError, match="holds none"):
        check_placed(spec, [wheel], [set()])


def test_base_root_cache_name_changes_with_packages() -> None:
    a = BaseRoot("bookworm", ("python3", "zlib1g"))
    assert a.cache_name() == BaseRoot("bookworm", ("zlib1g", "python3")).cache_name()
    assert a.cache_name() != BaseRoot("bookworm", ("python3",)).cache_name()
    assert a.cache_name().startswith("bookworm-minbase-")


def test_image_tar_is_base_plus_placed_wheel_files_with_modes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "true").write_text("#!/bin/sh\n")
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as tar:
        tar.add(root, arcname=".")
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        binary = zipfile.ZipInfo("pytriton/tritonserver/bin/tritonserver")
        binary.external_attr = 0o100755 << 16
        archive.writestr(binary, b"ELF")
        lib = zipfile.ZipInfo("nvidia_pytriton.libs/libx.so")
        lib.external_attr = 0o100666 << 16
        archive.writestr(lib, b"lib")
        archive.writestr("pytriton/client/client.py", b"")
    out = tmp_path / "image.tar"
    placed = write_image_tar(base, [(wheel, server_tree_path), (wheel, lambda n: None)], ("workspace",), out)
    assert placed == [{"opt/tritonserver/bin/tritonserver", "opt/tritonserver/lib/libx.so"}, set()]
    with tarfile.open(out) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    assert members["opt/tritonserver/bin/tritonserver"].mode == 0o755
    assert members["opt/tritonserver/lib/libx.so"].mode == 0o755 & 0o666
    assert members["opt/tritonserver"].isdir() and members["opt"].isdir() and members["workspace"].isdir()
    assert "usr/bin/true" in members
    assert not any("client" in name for name in members)
