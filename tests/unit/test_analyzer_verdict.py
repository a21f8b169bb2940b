"""A perf_analyzer run judged by what it left: a CSV row per point asked and perf_analyzer's own
error lines, so that a console script that turns every status into 0 (NGC's sdk images from 25.09,
pip's perf-analyzer) still fails a failed run with perf_analyzer's reason. Pure: the outputs are
ones perf_analyzer 2.51 printed (tests/e2e/test_console_script_analyzer.py runs the real thing)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pa_output import FIRST_UNSTABLE

from composer.analyzer.perf_analyzer import error_lines, explain_failure
from composer.analyzer.verdict import judge_run

# LAB.md: the seed model without --shape, exactly as perf_analyzer 2.51 and 2.60 print it
SHAPE_ERROR = (
    'error: Failed to init manager inputs: The variable-sized tensor "age" with model shape [-1] needs to '
    "have its shape fully defined. See the --shape option.\n"
)
NO_SERVER = "error: failed to get model metadata: HTTP client failed: Couldn't connect to server\n"
# perf_analyzer 2.51 --bogus (exit 99): getopt's line, then its usage text, which speaks of errors too
BAD_OPTION = """\
perf_analyzer: unrecognized option '--bogus'
Usage: perf_analyzer [options]
==== SYNOPSIS ====

\t--version
\t-m <model name>
\t a number of sequences more than the range of available sequence id,
\t perf analyzer will exit with error due to possible sequence id
\t collision. The default setting is start from sequence id 1 and without
"""
LATER_UNSTABLE = """\
Request concurrency: 1
  Pass [1] throughput: 3240.61 infer/sec. Avg latency: 298 usec (std 964 usec).
Request concurrency: 2
  Pass [3] throughput: 63.3286 infer/sec. Avg latency: 31563 usec (std 4332 usec).
Failed to obtain stable measurement within 3 measurement windows for concurrency 2. Please try to \
increase the --measurement-request-count.
"""
MID_SWEEP_ERROR = """\
Request concurrency: 1
  Pass [1] throughput: 3240.61 infer/sec. Avg latency: 298 usec (std 964 usec).
Request concurrency: 2
Thread [0] had error: failed to perform HTTP call: Couldn't connect to server
"""
DROPPED = "(its console script drops the status: judged by its output)"


@pytest.mark.parametrize(
    ("reported", "output", "asked", "measured", "judged"),
    [
        (0, "", [1, 2], (1.0, 2.0), 0),  # every point has its row
        (0, SHAPE_ERROR, [1], (1.0,), 0),  # a complete CSV outweighs what it printed
        (0, LATER_UNSTABLE, [1, 2, 3], (1.0,), 0),  # perf_analyzer's own status: 0, a retry resumes at 2
        (0, "Measured latency went over the set limit of 5 msec.", [1, 2, 3], (1.0,), 0),  # -l: a chosen stop
        (0, FIRST_UNSTABLE, [1], None, 2),  # what perf_analyzer itself exits with
        (0, SHAPE_ERROR, [1], None, None),
        (0, BAD_OPTION, [1], None, None),
        (0, MID_SWEEP_ERROR, [1, 2], (1.0,), None),
        (0, "", [1], None, None),  # no CSV and not a word: killed under the console script, say
        (99, NO_SERVER, [1], None, 99),  # a non-zero status is perf_analyzer's own word
        (2, FIRST_UNSTABLE, [1], None, 2),
        (137, "", [1], None, 137),
    ],
)
def test_a_run_is_judged_by_its_csv_and_its_error_lines(
    reported: int, output: str, asked: Sequence[float], measured: tuple[float, ...] | None, judged: int | None
) -> None:
    verdict = judge_run(reported, output, asked, measured)
    assert verdict.exit_code == judged
    assert verdict.failed == (judged not in (0, 2))
    assert (verdict.note is not None) == (judged != reported), "one line exactly when status and evidence disagree"


@pytest.mark.parametrize(
    ("output", "asked", "measured", "says"),
    [
        (SHAPE_ERROR, [1], None, "perf_analyzer exited 0 but wrote no CSV and printed an error"),
        (MID_SWEEP_ERROR, [1, 2], (1.0,), "perf_analyzer exited 0 but its CSV has 1 of the 2 points asked and "
                                          "printed an error"),
        (FIRST_UNSTABLE, [1], None, "perf_analyzer exited 0 but wrote no CSV and printed "
                                    "'Failed to obtain stable measurement'"),
        ("", [1], None, "perf_analyzer exited 0 but wrote no CSV and printed no error"),
    ],
)
def test_the_disagreement_is_said_in_one_line(
    output: str, asked: Sequence[float], measured: tuple[float, ...] | None, says: str
) -> None:
    note = judge_run(0, output, asked, measured).note
    assert note == f"{says} {DROPPED}"


def test_a_failure_whose_status_was_lost_gives_perf_analyzers_own_reason() -> None:
    error = explain_failure(None, SHAPE_ERROR, 600)
    assert error.exit_code == 5
    assert error.message == f"perf_analyzer: {SHAPE_ERROR.strip()}"
    assert error.hint and "--shape age:DIMS" in error.hint
    lost = explain_failure(None, NO_SERVER, 600)
    assert lost.message == f"perf_analyzer failed: {NO_SERVER.strip()}", "no exit status it never had"
    assert explain_failure(99, NO_SERVER, 600).message == f"perf_analyzer failed (exit 99): {NO_SERVER.strip()}"


# the same under the wheel's console script: the binary's argv[0] is its path inside the package
BIN = "/usr/local/lib/python3.11/dist-packages/perf_analyzer/bin/perf_analyzer"
BAD_OPTION_WHEEL = BAD_OPTION.replace("perf_analyzer: ", f"{BIN}: ").replace("Usage: perf_analyzer", f"Usage: {BIN}")


def test_an_option_perf_analyzer_rejects_is_named_whatever_its_status() -> None:
    for status in (99, None):  # 2.51 rejects --bogus with 99, not the 3 of other versions
        error = explain_failure(status, BAD_OPTION, 600)
        assert error.message == "perf_analyzer rejected an option: perf_analyzer: unrecognized option '--bogus'"
    wheel = explain_failure(None, BAD_OPTION_WHEEL, 600)
    assert wheel.message == f"perf_analyzer rejected an option: {BIN}: unrecognized option '--bogus'"
    assert judge_run(0, BAD_OPTION_WHEEL, [1], None).failed


def test_error_lines_are_perf_analyzers_own_not_its_usage_text() -> None:
    assert error_lines(BAD_OPTION) == ["perf_analyzer: unrecognized option '--bogus'"]
    assert error_lines(MID_SWEEP_ERROR) == [MID_SWEEP_ERROR.splitlines()[-1]]
    assert error_lines("Error: Failed to parse --concurrency-range. Invalid value provided: abc\n") == [
        "Error: Failed to parse --concurrency-range. Invalid value provided: abc"
    ]
    assert error_lines(LATER_UNSTABLE.split("Failed")[0]) == []
