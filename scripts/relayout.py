#!/usr/bin/env python3
"""Move composer/'s flat modules into layer subpackages and rewrite every reference to them.

Re-runnable: a module already in its place is skipped, a reference already rewritten is left
alone, so running it twice changes nothing. It stops, changing nothing, when composer/ holds a
top-level module that MOVES does not place: a new module needs a decision here first.

Usage: scripts/relayout.py [--check]   (--check: only say what would move; exit 1 if anything would)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = "composer"

# Layers, top to bottom; each imports only from the layers below it (.importlinter enforces it).
PACKAGES = {
    "cli": "Click commands only, and the app module that adds them to the one group.",
    "labs": "Labs end to end: plan, local and swarm lifecycles, one benchmark on a lab, the release matrix.",
    "runs": "A run's numbers after the fact: client merge, Triton's metrics, run comparison.",
    "reports": "Markdown, HTML and charts for runs and matrices.",
    "images": "The CPU lab images: root filesystems, wheels, assembly, probing.",
    "analyzer": "perf_analyzer: settings, argv, attempts, failure explanation, CSV and profile-export parsing.",
    "engine": "The Docker engine at the edge: containers, swarm services, exec, pulls, readiness.",
    "render": "Rendered files: the lab's compose file and the swarm lab's stack file.",
    "core": "Pure building blocks: stack config, release, sweep, labels, errors and ExitStatus.",
}

# old module (composer/<name>.py) → new dotted path under composer/
MOVES = {
    # core: pure, imports nothing above it
    "config": "core.config",
    "errors": "core.errors",
    "release": "core.release",
    "sweep": "core.sweep",
    "labels": "core.labels",
    "triton": "core.triton",
    "fsutil": "core.fsutil",
    "lab_releases": "core.lab_releases",
    "reported_versions": "core.reported_versions",
    "interrupts": "core.interrupts",
    "modelconfig": "core.modelconfig",
    "gpus": "core.gpus",
    # render
    "render": "render.compose",
    "swarm_spec": "render.swarm_spec",
    # engine
    "engine_host": "engine.host",  # from the --docker-host branch
    "shipped": "core.shipped",  # from the wheel branch: where templates and stacks are found
    "analyzer_verdict": "analyzer.verdict",  # from the wrapper branch
    "stack": "engine.containers",  # the Docker adapter, not the Stack (stack dir) of core.config
    "swarm": "engine.swarm",
    "spec": "engine.spec",
    "pull": "engine.pull",
    "readiness": "engine.readiness",
    "tritonhttp": "engine.tritonhttp",
    # analyzer
    "analyzer": "analyzer.perf_analyzer",
    "analyzer_flags": "analyzer.flags",
    "analyzer_identity": "analyzer.identity",
    "attempts": "analyzer.attempts",
    "attempt_outputs": "analyzer.attempt_outputs",
    "dataset": "analyzer.dataset",
    "inputs": "analyzer.inputs",
    "results": "analyzer.results",
    "profile_export": "analyzer.profile_export",
    "histogram": "analyzer.histogram",
    "utf8_stream": "analyzer.utf8_stream",
    # runs
    "merge": "runs.merge",
    "metrics": "runs.metrics",
    "scraper": "runs.scraper",
    "compare": "runs.compare",
    # reports
    "report": "reports.run_report",
    "matrix_report": "reports.matrix_report",
    # images
    "images": "images.lab_images",
    "image_probe": "images.probe",
    "rootfs": "images.rootfs",
    "wheels": "images.wheels",
    # labs
    "lab": "labs.local",
    "swarm_lab": "labs.swarm",
    "plan": "labs.plan",
    "bench": "labs.bench",
    "analyzer_execs": "labs.analyzer_execs",
    "matrix": "labs.matrix",
    "pull_view": "labs.pull_view",
    # cli
    "cli": "cli.app",
    "cli_bench": "cli.bench",
    "cli_stack": "cli.stack",
    "cli_results": "cli.results",
    "entry": "cli.entry",
    "crashlog": "cli.crashlog",
    "console": "cli.console",
    "live": "cli.live",
}

TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".sh", ".txt", ".j2"}
TEXT_NAMES = {"Makefile", "run"}
SKIP_PREFIXES = ("stacks/", "tests/e2e/stacks/", "tests/fixtures/")
SELF = "scripts/relayout.py"
# written for the new layout: it names the packages themselves, which old module names shadow
NEW_LAYOUT_FILES = {SELF, ".importlinter"}


def fail(message: str) -> None:
    sys.stderr.write(f"relayout: error: {message}\n")
    sys.exit(2)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def new_path(old: str) -> Path:
    return ROOT / PKG / (MOVES[old].replace(".", "/") + ".py")


def submodules() -> dict[str, set[str]]:
    """New package → the module names it will hold (from MOVES and from what is already there)."""
    subs: dict[str, set[str]] = {pkg: set() for pkg in PACKAGES}
    for dotted in MOVES.values():
        pkg, _, mod = dotted.partition(".")
        subs[pkg].add(mod)
    for pkg in PACKAGES:
        for path in (ROOT / PKG / pkg).glob("*.py"):
            subs[pkg].add(path.stem)
    return subs


def check_placement() -> None:
    for target in MOVES.values():
        if target.partition(".")[0] not in PACKAGES:
            fail(f"MOVES places a module in {target}, whose package is not in PACKAGES")
    unplaced = sorted(
        p.stem for p in (ROOT / PKG).glob("*.py") if p.name != "__init__.py" and p.stem not in MOVES
    )
    if unplaced:
        listed = ", ".join(f"composer/{u}.py" for u in unplaced)
        fail(f"no place for {listed}: add it to MOVES in {SELF}")
    for old in MOVES:
        src, dst = ROOT / PKG / f"{old}.py", new_path(old)
        if src.exists() and dst.exists():
            fail(f"both composer/{old}.py and {dst.relative_to(ROOT)} exist; merge them by hand first")


def unignore_packages() -> None:
    """.gitignore's ``runs/`` (run directories) would also hide composer/runs/."""
    path = ROOT / ".gitignore"
    lines = path.read_text().splitlines()
    for pkg in PACKAGES:
        rule = f"!{PKG}/{pkg}/"
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{PKG}/{pkg}/x.py"], cwd=ROOT).returncode == 0
        if rule not in lines and ignored:
            lines.append(rule)
    path.write_text("\n".join(lines) + "\n")


def move_files() -> list[str]:
    unignore_packages()
    moved = []
    for pkg, doc in PACKAGES.items():
        init = ROOT / PKG / pkg / "__init__.py"
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text(f'"""{doc}"""\n')
            git("add", str(init.relative_to(ROOT)))
    for old in MOVES:
        src = ROOT / PKG / f"{old}.py"
        if src.exists():
            git("mv", str(src.relative_to(ROOT)), str(new_path(old).relative_to(ROOT)))
            moved.append(old)
    return moved


# --- reference rewriting ---------------------------------------------------------------------

_FROM_PKG = re.compile(
    r"^(?P<indent>[ \t]*)from composer import (?P<names>[^(\n#]+?)(?P<comment>[ \t]*#.*)?$", re.M
)
_DOTTED = re.compile(
    r"(?<![\w.])composer\.(?P<name>[a-z_][a-z_0-9]*)(?P<rest>(?:\.[A-Za-z_]\w*)*)"
    r"(?P<after>[ \t]+import[ \t]+\(?\s*(?P<first>\w+))?"
)
_PATH = re.compile(r"(?<![\w/.])composer/(?P<name>[a-z_][a-z_0-9]*)\.py\b")
_FILE_UP2 = "Path(__file__).resolve().parent.parent"


def _rewrite_from_pkg(match: re.Match[str]) -> str:
    """``from composer import a, b as c`` → one import line per new package, local names kept."""
    names = [n.strip() for n in match["names"].split(",") if n.strip()]
    if not any(n.split(" as ")[0].strip() in MOVES for n in names):
        return match[0]
    indent, comment = match["indent"], match["comment"] or ""
    kept: list[str] = []
    lines: list[str] = []
    for item in names:
        name, _, alias = (part.strip() for part in item.partition(" as "))
        if name not in MOVES:
            kept.append(item)
            continue
        pkg, _, mod = MOVES[name].partition(".")
        local = alias or name
        lines.append(f"{indent}from composer.{pkg} import {mod}" + (f" as {local}" if local != mod else ""))
    if kept:
        lines.insert(0, f"{indent}from composer import {', '.join(kept)}")
    if "noqa" in comment:  # each split line needs the same exemption
        lines = [line + comment for line in lines]
    else:
        lines[-1] += comment
    return "\n".join(lines)


def _rewrite_dotted(match: re.Match[str], subs: dict[str, set[str]]) -> str:
    name, rest = match["name"], match["rest"]
    if name not in MOVES:
        return match[0]
    if name in PACKAGES:  # an old module named like a new package: leave references to the package
        first = rest[1:].split(".")[0] if rest else match["first"]
        if first and first in subs[name]:
            return match[0]
    return f"composer.{MOVES[name]}{rest}{match['after'] or ''}"


def _rewrite_path(match: re.Match[str]) -> str:
    name = match["name"]
    if name not in MOVES:
        return match[0]
    return f"composer/{MOVES[name].replace('.', '/')}.py"


def rewrite_text(text: str, subs: dict[str, set[str]]) -> str:
    if re.search(r"^[ \t]*from composer import \(", text, re.M):
        fail("a parenthesised `from composer import (…)` needs rewriting by hand first")
    text = _FROM_PKG.sub(_rewrite_from_pkg, text)
    # pyproject's package list names the new packages themselves; rewrite_pyproject owns that line
    lines = [
        line if line.startswith("packages = [") else _DOTTED.sub(lambda m: _rewrite_dotted(m, subs), line)
        for line in text.split("\n")
    ]
    return _PATH.sub(_rewrite_path, "\n".join(lines))


def rewrite_moved_paths(moved_files: set[Path]) -> None:
    """A module one folder deeper reaches the repository's templates/ one parent further up."""
    for path in moved_files:
        text = path.read_text()
        if _FILE_UP2 in text:
            path.write_text(text.replace(_FILE_UP2, "Path(__file__).resolve().parents[2]"))
        elif "__file__" in text and "parents[2]" not in text:
            fail(f"{path.relative_to(ROOT)} uses __file__ in a way {SELF} does not know; adjust it by hand")


def rewrite_pyproject(subs: dict[str, set[str]]) -> None:
    path = ROOT / "pyproject.toml"
    text = path.read_text()
    if "[tool.setuptools.packages.find]" in text:  # found by name: subpackages come along
        return
    line = re.compile(r'^packages = \[([^\]\n]*"composer"[^\]\n]*)\]$', re.M)
    found = line.search(text)
    listed = re.findall(r'"([^"]+)"', found.group(1)) if found else []
    layers = [PKG, *(f"{PKG}.{pkg}" for pkg in sorted(PACKAGES))]
    others = [name for name in listed if name not in layers]  # e.g. composer.templates, mapped in package-dir
    packages = ", ".join(f'"{p}"' for p in [*layers, *others])
    new, count = line.subn(f"packages = [{packages}]", text)
    if count != 1:
        fail('pyproject.toml: no one `packages = ["composer", …]` line; list the subpackages by hand')
    path.write_text(new)


def text_files() -> list[Path]:
    files = []
    for rel in git("ls-files").splitlines():
        if rel in NEW_LAYOUT_FILES or rel.startswith(SKIP_PREFIXES):
            continue
        path = ROOT / rel
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            files.append(path)
    return files


def main() -> None:
    check_only = "--check" in sys.argv[1:]
    check_placement()
    pending = [old for old in MOVES if (ROOT / PKG / f"{old}.py").exists()]
    if check_only:
        for old in pending:
            print(f"composer/{old}.py → {new_path(old).relative_to(ROOT)}")
        sys.exit(1 if pending else 0)
    moved = move_files()
    rewrite_moved_paths({new_path(old) for old in moved})
    subs = submodules()
    changed = []
    for path in text_files():
        text = path.read_text()
        new = rewrite_text(text, subs)
        if new != text:
            path.write_text(new)
            changed.append(path)
    rewrite_pyproject(subs)
    venv_ruff = ROOT / ".venv" / "bin" / "ruff"
    ruff = str(venv_ruff) if venv_ruff.exists() else shutil.which("ruff")
    py = [str(p.relative_to(ROOT)) for p in changed if p.suffix == ".py"]
    if py and ruff:  # split `from composer import …` lines land out of isort order
        subprocess.run([ruff, "check", "-q", "--select", "I", "--fix", *py], cwd=ROOT)
    elif py:
        print("relayout: no ruff here: run `ruff check --select I --fix composer tests benchmarks` to sort imports")
    print(f"relayout: moved {len(moved)} modules, rewrote references in {len(changed)} files")


if __name__ == "__main__":
    main()
