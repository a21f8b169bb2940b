"""Debian minbase root filesystems for the lab images: mirror discovery, debootstrap, cached tarballs.

The mirror is whatever this machine's apt already uses, so a lab builds wherever ``apt-get`` works.
Each root is debootstrapped once and kept as a tarball; later builds only read the tarball.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.core.errors import ImageBuildError

APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")

# Bump when the way a root is made or slimmed changes, so cached tarballs are rebuilt.
ROOTFS_RECIPE = 1
DEBOOTSTRAP_TIMEOUT_S = 900.0
STDERR_TAIL_LINES = 8

# Removed from every root after debootstrap: apt indexes and caches, docs (copyright files stay),
# man pages, translations, logs. None of it is needed to run tritonserver or perf_analyzer.
_SLIM_GLOBS = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*",
    "var/cache/debconf/*-old",
    "var/log/*.log",
    "var/log/apt/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/doc/*/*",
)


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]

    @property
    def is_security(self) -> bool:
        return "security" in self.uri or any(s.endswith("-security") for s in self.suites)


@dataclass(frozen=True)
class BaseRoot:
    """A Debian minbase root: the suite and the packages added to it."""

    suite: str
    packages: tuple[str, ...]

    def cache_name(self) -> str:
        recipe = json.dumps([ROOTFS_RECIPE, self.suite, sorted(self.packages)]).encode()
        return f"{self.suite}-minbase-{hashlib.sha256(recipe).hexdigest()[:12]}.tar"


def parse_deb822_sources(text: str) -> list[AptSource]:
    """``deb`` entries of a deb822 ``.sources`` file, in order; disabled stanzas are skipped."""
    sources: list[AptSource] = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        suites = tuple(stanza.get("suites", "").split())
        sources.extend(AptSource(uri.rstrip("/"), suites) for uri in stanza.get("uris", "").split())
    return sources


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, key = {}, None
        elif line[0].isspace() and key is not None:
            fields[key] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            fields[key] = value.strip()
    if fields:
        stanzas.append(fields)
    return stanzas


def parse_one_line_sources(text: str) -> list[AptSource]:
    """``deb`` lines of a classic ``sources.list``; ``[option=…]`` blocks are ignored."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[len("deb ") :].strip()
        if rest.startswith("["):
            rest = rest.partition("]")[2].strip()
        words = rest.split()
        if len(words) >= 2:
            sources.append(AptSource(words[0].rstrip("/"), (words[1],)))
    return sources


def pick_mirror(sources: Sequence[AptSource]) -> str | None:
    """The first http(s) entry that is not a security archive."""
    for source in sources:
        if source.uri.startswith(("http://", "https://")) and not source.is_security:
            return source.uri
    return None


def debian_mirror(sources_dir: Path = APT_SOURCES_DIR, sources_list: Path = APT_SOURCES_LIST) -> str:
    """The Debian mirror this machine's apt uses (deb822 files first, then ``sources.list``)."""
    sources: list[AptSource] = []
    if sources_dir.is_dir():
        for path in sorted(sources_dir.glob("*.sources")):
            sources.extend(parse_deb822_sources(path.read_text(errors="replace")))
    if sources_list.is_file():
        sources.extend(parse_one_line_sources(sources_list.read_text(errors="replace")))
    mirror = pick_mirror(sources)
    if mirror is None:
        raise ImageBuildError(
            f"no Debian mirror found in {sources_dir}/*.sources or {sources_list}",
            hint="configure apt with a Debian archive (the one `apt-get update` uses) and retry",
        )
    return mirror


def run_checked(argv: Sequence[str], *, what: str, timeout: float | None = None) -> str:
    """Run ``argv``; return stdout, or raise ImageBuildError ending with the tail of its output."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{what}: {argv[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(f"{what}: no result after {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip()
        tail = " | ".join(output.splitlines()[-STDERR_TAIL_LINES:])
        raise ImageBuildError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def base_root_tarball(base: BaseRoot, mirror: str, cache_dir: Path, progress: Callable[[str], None]) -> Path:
    """Path of the cached tarball of ``base``, debootstrapping it first when absent."""
    roots_dir = cache_dir / "roots"
    tarball = roots_dir / base.cache_name()
    if tarball.is_file():
        progress(f"using cached {base.suite} root {tarball}")
        return tarball
    roots_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{base.suite}-", dir=roots_dir))
    try:
        target = work / "root"
        progress(f"debootstrap {base.suite} (minbase + {' '.join(base.packages)})")
        run_checked(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(base.packages)}",
                base.suite,
                str(target),
                mirror,
            ],
            what=f"debootstrap {base.suite}",
            timeout=DEBOOTSTRAP_TIMEOUT_S,
        )
        _slim(target)
        partial = work / "root.tar"
        progress(f"packing {base.suite} root")
        run_checked(
            ["tar", "--numeric-owner", "-C", str(target), "-cf", str(partial), "."],
            what=f"tar of the {base.suite} root",
        )
        os.replace(partial, tarball)
    finally:
        _remove_tree(work)
    return tarball


def _slim(root: Path) -> None:
    for pattern in _SLIM_GLOBS:
        for path in root.glob(pattern):
            if path.name == "copyright":
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _remove_tree(path: Path) -> None:
    # A failed debootstrap can leave /proc or /sys mounted inside the target: rmtree would
    # descend into them, so detach every mount below ``path`` first.
    prefix = str(path.resolve()) + "/"
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)
