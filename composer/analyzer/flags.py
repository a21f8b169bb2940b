"""Which perf_analyzer options exist in which perf_analyzer version, and an argv fitted to one.

Read from perf_analyzer's own option table (``long_options`` in command_line_parser.cc) on every
release branch: triton-inference-server/client src/c++/perf_analyzer up to r24.07, then
triton-inference-server/perf_analyzer src/ from r24.08. A release branch's perf_analyzer has the
version of that release's tritonclient (r23.09 → 2.38.0). Options present in r23.03 (2.32.0, the
oldest release tisbench runs) are taken as always there. Pure: no Docker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from composer.core.errors import UsageError
from composer.core.lab_releases import version_tuple

# First version whose option table has the option.
FLAG_SINCE: dict[str, str] = {
    "--bls-composing-models": "2.33.0",
    "--sequence-length-variation": "2.33.0",
    "--serial-sequences": "2.35.0",
    "--input-tensor-format": "2.36.0",
    "--output-tensor-format": "2.36.0",
    "--version": "2.36.0",
    "--profile-export-file": "2.38.0",
    "--periodic-concurrency-range": "2.39.0",
    "--request-parameter": "2.39.0",
    "--request-period": "2.39.0",
    "--endpoint": "2.44.0",
    "--request-count": "2.46.0",
    "--warmup-request-count": "2.50.0",
    "--schedule": "2.53.0",
    "--session-concurrency": "2.55.0",
    "--fixed-schedule": "2.56.0",
    "--grpc-method": "2.56.0",
}
# First version whose option table no longer has it.
FLAG_UNTIL: dict[str, str] = {"--trace-file": "2.46.0", "--schedule": "2.56.0"}
# Options that take no value (getopt ``no_argument``; short ones from "vdazc:u:m:…").
NO_VALUE = frozenset(
    {
        "-v",
        "-d",
        "-a",
        "-z",
        "--streaming",
        "--async",
        "--sync",
        "--binary-search",
        "--ssl-grpc-use-ssl",
        "--verbose-csv",
        "--enable-mpi",
        "--collect-metrics",
        "--serial-sequences",
        "--version",
        "--fixed-schedule",
    }
)


def has_option(version: str | None, option: str) -> bool:
    """Whether perf_analyzer ``version`` accepts ``option``; an unknown version is given the benefit."""
    if version is None:
        return True
    have = version_tuple(version)
    since, until = FLAG_SINCE.get(option), FLAG_UNTIL.get(option)
    return (since is None or have >= version_tuple(since)) and (until is None or have < version_tuple(until))


def _why_not(version: str, option: str) -> str:
    since, until = FLAG_SINCE.get(option), FLAG_UNTIL.get(option)
    if until is not None and version_tuple(version) >= version_tuple(until):
        return f"perf_analyzer {version} has no {option} (removed in {until})"
    return f"perf_analyzer {version} has no {option} (it came in {since})"


def left_out_line(version: str, option: str, shown: str | None = None) -> str:
    """The line that says an option was left out, and why."""
    return f"left out {shown or option}: {_why_not(version, option)}"


def _options(argv: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, option) of each option token and its value, in order."""
    found = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if not token.startswith("-") or token == "-":
            index += 1
            continue
        name = token.split("=", 1)[0]
        takes_value = name not in NO_VALUE and "=" not in token and not (len(name) > 2 and name[1] != "-")
        end = index + (2 if takes_value and index + 1 < len(argv) else 1)
        found.append((index, end, name))
        index = end
    return found


@dataclass(frozen=True)
class FittedArgv:
    argv: list[str]
    left_out: list[str]  # one line per option tisbench chose that this perf_analyzer lacks


def check_user_args(user_args: Sequence[str], version: str | None) -> None:
    """Refuse (UsageError, exit 2) an option the user asked for that perf_analyzer ``version`` lacks."""
    if version is None:
        return
    for _, _, name in _options(user_args):
        if not has_option(version, name):
            raise UsageError(
                f"{name}: {_why_not(version, name)}, the perf_analyzer of this lab's sdk image",
                f"drop {name}, or use a release whose perf_analyzer has it",
            )


def fit_argv(argv: Sequence[str], user_args: Sequence[str], version: str | None) -> FittedArgv:
    """``argv`` for perf_analyzer ``version``: options tisbench chose that it lacks are left out (and
    said); one the user asked for (``user_args``, the tail of argv) is refused: UsageError, exit 2."""
    user_from = len(argv) - len(user_args)
    if user_from < 0 or list(argv[user_from:]) != list(user_args):
        raise ValueError("user_args must be the tail of argv")
    if version is None:
        return FittedArgv(list(argv), [])
    check_user_args(user_args, version)
    own = list(argv[:user_from])
    kept: list[str] = []
    left_out: list[str] = []
    cursor = 0
    for start, end, name in _options(own):
        kept += own[cursor:start]
        if has_option(version, name):
            kept += own[start:end]
        else:
            left_out.append(left_out_line(version, name, " ".join(own[start:end])))
        cursor = end
    return FittedArgv(kept + own[cursor:] + list(user_args), left_out)
