"""One error hierarchy; the CLI translates it into one line on stderr and an exit code.

Exit codes (documented in the README):
    0 ok · 1 regression found · 2 bad input · 3 Docker unavailable / image missing
    4 lab failed (start, readiness, model load) · 5 analysis failed · 130 interrupted
"""

from __future__ import annotations


class TisbenchError(Exception):
    """Base of every error tisbench reports to a user.

    ``message`` says what was wrong and where; ``hint`` says what to do next.
    """

    exit_code = 2

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


class RegressionFound(TisbenchError):
    """A comparison found a regression beyond the allowed threshold."""

    exit_code = 1


class DockerUnavailable(TisbenchError):
    """The Docker engine cannot be reached or lacks a needed capability."""

    exit_code = 3


class ImageMissing(TisbenchError):
    """A needed image is not present on the engine."""

    exit_code = 3


class ImageBuildError(TisbenchError):
    """Building the lab images failed."""

    exit_code = 3


class StackError(TisbenchError):
    """Creating, starting or finding a lab failed."""

    exit_code = 4


class ReadinessTimeout(StackError):
    """The server did not become ready before the deadline."""


class ServerDied(StackError):
    """The server container exited while we waited for it."""


class ModelLoadError(StackError):
    """Triton could not load the benchmarked model."""


class AnalyzerError(TisbenchError):
    """perf_analyzer failed or its output could not be read."""

    exit_code = 5


class Interrupted(TisbenchError):
    """SIGINT or SIGTERM arrived; everything created has been removed."""

    exit_code = 130


class SignalReceived(KeyboardInterrupt):
    """SIGTERM delivered like Ctrl-C: a BaseException, so no ``except Exception`` (ours, or a
    library's event loop) can swallow it on the way to the CLI, which exits 130."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def interruption_message(exc: BaseException) -> str:
    """``interrupted by SIGTERM`` / ``interrupted by SIGINT`` for a KeyboardInterrupt."""
    return f"interrupted by {exc.signal_name if isinstance(exc, SignalReceived) else 'SIGINT'}"
