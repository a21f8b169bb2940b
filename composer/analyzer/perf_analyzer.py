"""perf_analyzer: its argv as a list, its exit codes explained (engine/exec runs it in the sdk container)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from composer.analyzer.flags import fit_argv
from composer.core.arrivals import Arrivals
from composer.core.errors import AnalyzerError, UsageError
from composer.core.run_dir import ANALYZER_LOG, LOGS
from composer.core.sweep import Sweep
from composer.core.triton import SERVER, SERVER_PORTS

SERVER_HOST = SERVER  # the server's service name: its DNS alias on the lab's network
PROTOCOL_PORTS = {protocol: SERVER_PORTS[protocol] for protocol in ("http", "grpc")}
OUTPUT_DIR = "/tmp"
DECOUPLED_FIELD = "model_transaction_policy.decoupled"
STREAMING_ARGS = ("--streaming", "--async")  # perf_analyzer streams only over gRPC, asynchronously
_SHAPE_ERROR = "needs to have its shape fully defined"


@dataclass(frozen=True)
class BenchSettings:
    model: str
    sweep: Sweep
    protocol: str
    input_data: str  # path inside the sdk container, relative to /workspace
    measurement_requests: int | None
    measurement_interval_ms: int | None
    shapes: dict[str, list[int]]
    extra_args: tuple[str, ...]
    timeout_s: float
    profile_export: bool
    metric_args: tuple[str, ...] = ()  # --collect-metrics … when the server has GPUs
    streaming: bool = False  # a decoupled model: gRPC streaming, 0..n responses per request
    sequence_ids: int | None = None  # a sequence model: first id of this run's own --sequence-id-range
    analyzer_version: str | None = None  # the perf_analyzer in the sdk container: its argv is fitted to it
    values_per_request: int | None = None  # tensor elements a request and its response put in the export
    arrivals: Arrivals = Arrivals()  # how requests arrive: constant, Poisson, or an interval file
    shared_memory: str = "none"  # none | system | cuda
    output_shm_bytes: int | None = None  # --output-shared-memory-size, sized from real responses
    server_host: str = SERVER_HOST  # how the analyzer reaches the server (Kubernetes: its Service, or its pod)


def is_decoupled(config: Mapping[str, Any]) -> bool:
    """Whether the model config (as the server serves it) makes the model decoupled."""
    policy = config.get("model_transaction_policy")
    value = policy.get("decoupled", False) if isinstance(policy, Mapping) else False
    return value is True or str(value).lower() == "true"


SEQUENCE_ID_SPAN = 1 << 20  # ids one perf_analyzer run may use
_SEQUENCE_SLOTS = (2**31 - 1) // SEQUENCE_ID_SPAN - 8  # perf_analyzer reads the range with stoi: int32, retries on top


def for_model_config(settings: BenchSettings, config: Mapping[str, Any], asked_protocol: str | None) -> BenchSettings:
    """A decoupled model is benchmarked over gRPC with streaming, whatever the stack's default;
    an explicit --protocol http cannot measure it and is refused. A sequence-batched model gets
    sequence ids no earlier run used: perf_analyzer starts at 1 each run, and a stateful model
    refuses to start a sequence whose id an interrupted earlier run left open."""
    if "sequence_batching" in config and not any(a.startswith("--sequence-id-range") for a in settings.extra_args):
        settings = replace(settings, sequence_ids=1 + secrets.randbelow(_SEQUENCE_SLOTS) * SEQUENCE_ID_SPAN)
    if not is_decoupled(config):
        return settings
    refuse_http_if_decoupled(settings.model, config, asked_protocol)
    return replace(settings, protocol="grpc", streaming=True)


def refuse_http_if_decoupled(model: str, config: Mapping[str, Any], asked_protocol: str | None) -> None:
    """An explicit --protocol http on a decoupled model is bad input (known offline from config.pbtxt)."""
    if asked_protocol == "http" and is_decoupled(config):
        raise UsageError(
            f"--protocol http: model {model!r} is decoupled ({DECOUPLED_FIELD}: true), "
            "and perf_analyzer measures decoupled models only over gRPC streaming",
            "drop --protocol http: tisbench then uses gRPC with --streaming",
        )


def decoupled_note(settings: BenchSettings) -> dict[str, Any]:
    """The manifest's record of the transport tisbench chose for a decoupled model."""
    flags = ["-i", settings.protocol, *STREAMING_ARGS]
    return {
        "field": DECOUPLED_FIELD,
        "protocol": settings.protocol,
        "flags": flags,
        "chosen": f"perf_analyzer runs over gRPC with streaming ({' '.join(flags)}), chosen by tisbench",
    }


@dataclass(frozen=True)
class Outputs:
    csv: str
    profile_export: str | None


def outputs_for(run_id: str, profile_export: bool) -> Outputs:
    base = f"{OUTPUT_DIR}/tisbench-{run_id}"
    return Outputs(f"{base}.csv", f"{base}.profile_export.json" if profile_export else None)


def perf_analyzer_argv(settings: BenchSettings, outputs: Outputs) -> list[str]:
    """The exact perf_analyzer command line, recorded in the manifest and run as-is."""
    argv = [
        "perf_analyzer",
        "-m",
        settings.model,
        "-u",
        f"{settings.server_host}:{PROTOCOL_PORTS[settings.protocol]}",
        "-i",
        settings.protocol,
        "--input-data",
        settings.input_data,
    ]
    for name, dims in settings.shapes.items():
        argv += ["--shape", f"{name}:{','.join(str(d) for d in dims)}"]
    if settings.arrivals.intervals_file is None:
        argv += [settings.sweep.flag, settings.sweep.argument()]
    argv += settings.arrivals.argv()
    if settings.measurement_interval_ms is not None:
        argv += ["--measurement-mode", "time_windows", "--measurement-interval", str(settings.measurement_interval_ms)]
    else:
        argv += [
            "--measurement-mode",
            "count_windows",
            "--measurement-request-count",
            str(settings.measurement_requests),
        ]
    argv += ["-f", outputs.csv, "--verbose-csv"]
    if outputs.profile_export:
        argv += ["--profile-export-file", outputs.profile_export]
    if settings.shared_memory != "none":
        argv += ["--shared-memory", settings.shared_memory]
        if settings.output_shm_bytes:
            argv += ["--output-shared-memory-size", str(settings.output_shm_bytes)]
    if settings.streaming:
        argv += STREAMING_ARGS
    if settings.sequence_ids is not None:
        argv += ["--sequence-id-range", f"{settings.sequence_ids}:{settings.sequence_ids + SEQUENCE_ID_SPAN - 1}"]
    if "-v" not in settings.extra_args:  # one -v: a line per trial, which says why a point is unstable
        argv.append("-v")
    argv += [*settings.metric_args, *settings.extra_args]
    if settings.analyzer_version is None:
        return argv
    return fit_argv(argv, settings.extra_args, settings.analyzer_version).argv


def with_deadline(argv: list[str], timeout_s: float) -> list[str]:
    """coreutils timeout kills perf_analyzer inside the container when the wall clock runs out."""
    return ["timeout", "-s", "KILL", f"{timeout_s:g}", *argv]


def _last_lines(output: str, count: int = 6) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


# perf_analyzer's own error lines: "error: …" / "Error: Failed to parse …", "Failed to …",
# "Thread [0] had error: …", and getopt's "perf_analyzer: unrecognized option '--x'" (under the
# perf-analyzer wheel's console script argv[0], so that name, is the binary's full path).
_ARGV0 = r"(?:\S*/)?perf_analyzer"
_ERROR_LINE = re.compile(rf"(?i:^(?:error\b|failed\b|thread \[\d+\].*\berror\b|{_ARGV0}: .*option))|Failed")
_MODEL_ERROR = re.compile(r"^Thread \[\d+\] had error: ")
_OPTION_REJECTED = re.compile(rf"^{_ARGV0}: .*option|^Usage: {_ARGV0} ", re.MULTILINE)


def error_lines(output: str) -> list[str]:
    """The lines in which perf_analyzer says something failed, in order."""
    lines = (line.strip() for line in output.splitlines())
    return [line for line in lines if _ERROR_LINE.search(line)]


def explain_failure(
    exit_code: int | None, output: str, timeout_s: float, elapsed_s: float | None = None
) -> AnalyzerError:
    """perf_analyzer's failure turned into one line with what to do next. ``exit_code`` None: its
    exit status was lost (a console script that drops it), and its output showed the failure."""
    found = error_lines(output)
    first_error = found[0] if found else _last_lines(output)
    model_error = next((line for line in found if _MODEL_ERROR.match(line)), None)
    if model_error is not None:  # what the model itself answered, behind perf_analyzer's generic line
        missing_file = "No such file or directory" in model_error
        return AnalyzerError(
            f"perf_analyzer: the model answered with an error: {model_error}",
            "the model opens a path the server cannot see: mount it with server.volumes (e.g. ./data:/data)"
            if missing_file
            else f"fix the model or the input data; its traceback is in {LOGS}/triton_server.log in the run dir",
        )
    if _SHAPE_ERROR in output:
        match = re.search(r'tensor "([^"]+)" with model shape (\[[^\]]*\])', output)
        name = match.group(1) if match else "INPUT"
        return AnalyzerError(
            f"perf_analyzer: {first_error}",
            f"pass --shape {name}:DIMS for each variable input (or drop --no-auto-shape to derive them)",
        )
    if exit_code == 137 and elapsed_s is not None and elapsed_s < timeout_s * 0.95:
        return AnalyzerError(
            f"perf_analyzer was killed after {elapsed_s:.0f} s, before its {timeout_s:g} s timeout",
            f"the analyzer container was stopped or ran out of memory; see {LOGS}/{ANALYZER_LOG}",
        )
    if exit_code == 137:
        return AnalyzerError(
            f"perf_analyzer killed after the {timeout_s:g} s timeout",
            "raise --bench-timeout (analyzer.timeout in stack.yaml) or measure fewer requests",
        )
    if exit_code == 2:
        return AnalyzerError(
            f"perf_analyzer: measurement not stable ({first_error})",
            "use a longer window (--measurement-interval) or more requests (--measurement-requests)",
        )
    if exit_code == 3 or _OPTION_REJECTED.search(output):  # 2.51 rejects an unknown option with 99
        return AnalyzerError(f"perf_analyzer rejected an option: {first_error}", "fix or remove that option")
    status = "" if exit_code is None else f" (exit {exit_code})"
    return AnalyzerError(f"perf_analyzer failed{status}: {first_error}", f"see {LOGS}/{ANALYZER_LOG} in the run dir")


_POINT = re.compile(r"^(Request concurrency|Request Rate): ([\d.]+)", re.MULTILINE)


def sweep_points(text: str) -> list[float]:
    """The sweep points perf_analyzer announces in a chunk of its output, in order."""
    return [float(value) for _, value in _POINT.findall(text)]
