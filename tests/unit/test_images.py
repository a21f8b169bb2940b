"""Pure logic of the lab image build: mirrors, tags, the release table, preconditions, wheel layout."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import docker
import pytest

from composer.errors import ImageBuildError, ReleaseError
from composer.images import (
    LAB_RELEASES,
    SDK,
    SERVER,
    HostFacts,
    LabRelease,
    check_engine,
    check_host,
    image_changes,
    lab_image_tags,
    lab_release,
    pip_platforms,
    sdk_tree_path,
    server_tree_path,
    write_image_tar,
)
from composer.rootfs import (
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


def test_release_table_maps_each_release_to_its_wheel_and_server() -> None:
    assert {r: (lab.pytriton_version, lab.server_version) for r, lab in LAB_RELEASES.items()} == {
        "23.07": ("0.3.0", "2.36.0"),
        "24.03": ("0.5.6", "2.44.0"),
        "24.10": ("0.7.0", "2.51.0"),
    }
    assert all(lab.release == r and lab.perf_analyzer_version == "2.60.0" for r, lab in LAB_RELEASES.items())


def test_release_table_entries_are_frozen() -> None:
    with pytest.raises(AttributeError):
        LAB_RELEASES["24.10"].server_version = "0"  # type: ignore[misc]


def test_unknown_release_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ReleaseError) as caught:
        lab_release("22.01")
    assert "23.07, 24.03, 24.10" in (caught.value.hint or "")


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


def test_pip_platforms_cover_every_older_manylinux() -> None:
    args = pip_platforms(36)
    assert args[:2] == ["--platform", "manylinux_2_17_x86_64"]
    assert args[-1] == "manylinux_2_36_x86_64"
    assert "manylinux_2_35_x86_64" in args and "manylinux_2_38_x86_64" not in args


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


def test_sdk_tree_puts_perf_analyzer_on_the_path() -> None:
    assert sdk_tree_path("perf_analyzer/bin/perf_analyzer") == "usr/local/bin/perf_analyzer"
    assert sdk_tree_path("perf_analyzer/cli.py") is None


def test_image_changes_set_environment_workdir_and_labels() -> None:
    lab = LabRelease("24.10", "0.7.0", "2.51.0", "2.60.0")
    server = image_changes(SERVER, lab)
    assert "ENV LD_LIBRARY_PATH=/opt/tritonserver/lib" in server
    assert any(c.startswith("ENV PATH=/opt/tritonserver/bin:") for c in server)
    assert "WORKDIR /opt/tritonserver" in server
    assert 'LABEL tisbench.kind="server"' in server
    assert 'LABEL tisbench.server-version="2.51.0"' in server
    sdk = image_changes(SDK, lab)
    assert "WORKDIR /workspace" in sdk
    assert 'LABEL tisbench.kind="sdk"' in sdk
    assert 'LABEL tisbench.perf-analyzer-version="2.60.0"' in sdk
    assert 'LABEL tisbench.lab-image="true"' in sdk
    assert 'LABEL tisbench.release="24.10"' in sdk


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
    assert write_image_tar(base, wheel, server_tree_path, ("workspace",), out) == 2
    with tarfile.open(out) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    assert members["opt/tritonserver/bin/tritonserver"].mode == 0o755
    assert members["opt/tritonserver/lib/libx.so"].mode == 0o755 & 0o666
    assert members["opt/tritonserver"].isdir() and members["opt"].isdir() and members["workspace"].isdir()
    assert "usr/bin/true" in members
    assert not any("client" in name for name in members)
