"""One error hierarchy; the CLI translates it into one line on stderr and an exit status.

The exit statuses are ``ExitStatus``, documented once in ``EXIT_MEANINGS``: the CLI's help lists
them from there, and a unit test holds the README's table to it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What the exit status of a tisbench command means (httpie-style: each has one meaning)."""

    OK = 0
    REGRESSION = 1
    BAD_INPUT = 2
    DOCKER_UNAVAILABLE = 3
    LAB_FAILED = 4
    ANALYSIS_FAILED = 5
    NO_CANDIDATE = 6
    UNSTABLE = 7
    INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: never 1, which a CI gate reads as a regression
    INTERRUPTED = 130


EXIT_MEANINGS = {
    ExitStatus.OK: "ok",
    ExitStatus.REGRESSION: "a comparison found a regression",
    ExitStatus.BAD_INPUT: "bad input: usage, stack file, release, dataset, unknown lab",
    ExitStatus.DOCKER_UNAVAILABLE: "Docker unavailable, or an image missing",
    ExitStatus.LAB_FAILED: "the lab failed: start, readiness, model load, port taken",
    ExitStatus.ANALYSIS_FAILED: "the analysis failed: perf_analyzer error, a point unstable under "
    "--require-stable, server died mid-run",
    ExitStatus.NO_CANDIDATE: "tune: no candidate configuration met the constraints (the closest is named)",
    ExitStatus.UNSTABLE: "measured, but some points never met perf_analyzer's stability rule: their numbers are "
    "kept and marked unstable (--require-stable makes that exit 5)",
    ExitStatus.INTERNAL_ERROR: "internal error (a bug): the error line names the file that holds the traceback",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); everything created was removed",
}


class TisbenchError(Exception):
    """Base of every error tisbench reports to a user.

    ``message`` says what was wrong and where; ``hint`` says what to do next.
    """

    exit_code: int = ExitStatus.BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} — {self.hint}"
        return " ".join(text.split())


class UsageError(TisbenchError):
    """A command-line value is wrong."""


class ConfigError(TisbenchError):
    """The stack directory or stack.yaml is wrong."""


class ReleaseError(TisbenchError):
    """A release string is malformed or refused by policy."""


class DatasetError(TisbenchError):
    """perf_analyzer input data is wrong."""


class UnstablePoints(TisbenchError):
    """A run measured every point it could, but some never met perf_analyzer's stability rule."""

    exit_code = ExitStatus.UNSTABLE


class RegressionFound(TisbenchError):
    """A comparison found a regression beyond the allowed threshold."""

    exit_code = ExitStatus.REGRESSION


class DockerUnavailable(TisbenchError):
    """The Docker engine cannot be reached or lacks a needed capability."""

    exit_code = ExitStatus.DOCKER_UNAVAILABLE


class ImageMissing(TisbenchError):
    """A needed image is not present on the engine."""

    exit_code = ExitStatus.DOCKER_UNAVAILABLE


class ImageBuildError(TisbenchError):
    """Building the lab images failed."""

    exit_code = ExitStatus.DOCKER_UNAVAILABLE


class StackError(TisbenchError):
    """Creating, starting or finding a lab failed."""

    exit_code = ExitStatus.LAB_FAILED


class ReadinessTimeout(StackError):
    """The server did not become ready before the deadline."""


class ServerDied(StackError):
    """The server container exited while we waited for it."""


class ModelLoadError(StackError):
    """Triton could not load the benchmarked model."""


class AnalyzerError(TisbenchError):
    """perf_analyzer failed or its output could not be read."""

    exit_code = ExitStatus.ANALYSIS_FAILED


class NoCandidate(TisbenchError):
    """`tisbench tune` measured, and no configuration met the latency budget or throughput floor."""

    exit_code = ExitStatus.NO_CANDIDATE


class Interrupted(TisbenchError):
    """SIGINT or SIGTERM arrived; everything created has been removed."""

    exit_code = ExitStatus.INTERRUPTED


class SignalReceived(KeyboardInterrupt):
    """SIGINT or SIGTERM (composer.core.interrupts raises it for both): a BaseException, so no
    ``except Exception`` (ours, or a library's event loop) can swallow it on the way to the CLI,
    which exits 130."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def interruption_message(exc: BaseException) -> str:
    """``interrupted by SIGTERM`` / ``interrupted by SIGINT`` for a KeyboardInterrupt."""
    return f"interrupted by {exc.signal_name if isinstance(exc, SignalReceived) else 'SIGINT'}"
