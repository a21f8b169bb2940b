"""perf_analyzer's failures explained in one line with what to do next, from the texts it prints
(perf_analyzer 2.51 on the quickstart, and the decoupled check in its perf_analyzer.cc)."""

from __future__ import annotations

import pytest
from pa_output import FIRST_UNSTABLE

from composer.analyzer.perf_analyzer import error_lines, explain_failure
from composer.core.errors import AnalyzerError, ExitStatus

SHAPE_ERROR = (
    'error: Failed to init manager inputs: The variable-sized tensor "age" with model shape [-1] needs to '
    "have its shape fully defined. See the --shape option.\n"
)
# perf_analyzer.cc refuses a decoupled model without --streaming before it measures: main() prints
# the exception's text to stderr and exits with its GENERIC_ERROR, 99
DECOUPLED_ERROR = (
    "Decoupled models must be run with `--async` and `--streaming` and either `-i grpc` or "
    "`--service-kind=triton_c_api`\n"
)
NO_MODEL = "error: failed to get model metadata: Request for unknown model: 'nope' is not found\n"
BAD_VALUE = "Error: Failed to parse --concurrency-range. Invalid value provided: abc\n"


def test_a_failure_is_an_analysis_failure() -> None:
    error = explain_failure(99, NO_MODEL, 600)

    assert isinstance(error, AnalyzerError) and error.exit_code == ExitStatus.ANALYSIS_FAILED


def test_a_variable_sized_tensor_without_shape_says_which_shape_flag_to_pass() -> None:
    error = explain_failure(99, SHAPE_ERROR, 600)

    assert error.message == f"perf_analyzer: {SHAPE_ERROR.strip()}"
    assert error.hint is not None and error.hint.startswith("pass --shape age:DIMS for each variable input")


def test_a_shape_error_without_a_tensor_name_still_names_the_flag() -> None:
    error = explain_failure(99, "error: input needs to have its shape fully defined\n", 600)

    assert error.hint is not None and "--shape INPUT:DIMS" in error.hint


def test_the_decoupled_refusal_is_passed_on_in_perf_analyzers_words() -> None:
    error = explain_failure(99, DECOUPLED_ERROR, 600)

    assert error.message == f"perf_analyzer failed (exit 99): {DECOUPLED_ERROR.strip()}"


def test_exit_2_is_a_measurement_that_was_not_stable() -> None:
    error = explain_failure(2, FIRST_UNSTABLE, 600)

    assert error.message == (
        "perf_analyzer: measurement not stable (Failed to obtain stable measurement within 3 measurement "
        "windows for concurrency 1. Please try to increase the --measurement-request-count.)"
    )
    assert error.hint is not None and "--measurement-interval" in error.hint and "--measurement-requests" in error.hint


def test_a_kill_at_the_timeout_says_to_raise_the_timeout() -> None:
    error = explain_failure(137, "Request concurrency: 1\n", 30, elapsed_s=30.2)

    assert error.message == "perf_analyzer killed after the 30 s timeout"
    assert error.hint is not None and "--bench-timeout" in error.hint


def test_a_kill_well_before_the_timeout_is_not_blamed_on_the_timeout() -> None:
    error = explain_failure(137, "", 600, elapsed_s=12.0)

    assert error.message == "perf_analyzer was killed after 12 s, before its 600 s timeout"
    assert error.hint is not None and "out of memory" in error.hint


def test_a_kill_without_elapsed_time_is_taken_as_the_timeout() -> None:
    assert explain_failure(137, "", 45).message == "perf_analyzer killed after the 45 s timeout"


@pytest.mark.parametrize("exit_code", [3, 99, None])
def test_an_option_error_says_which_option(exit_code: int | None) -> None:
    output = "perf_analyzer: unrecognized option '--bogus'\nUsage: perf_analyzer [options]\n"

    error = explain_failure(exit_code, output, 600)

    assert error.message == "perf_analyzer rejected an option: perf_analyzer: unrecognized option '--bogus'"


def test_any_other_failure_names_the_exit_and_the_first_error_line() -> None:
    output = "*** Measurement Settings ***\n" + NO_MODEL + "error: second\n"

    error = explain_failure(99, output, 600)

    assert error.message == f"perf_analyzer failed (exit 99): {NO_MODEL.strip()}"
    assert error.hint == "see logs/perf_analyzer.log in the run dir"


def test_output_without_an_error_line_is_quoted_by_its_last_lines() -> None:
    output = "".join(f"line {n}\n" for n in range(10))

    error = explain_failure(1, output, 600)

    assert error.message == "perf_analyzer failed (exit 1): " + " | ".join(f"line {n}" for n in range(4, 10))


def test_error_lines_find_each_form_perf_analyzer_prints() -> None:
    output = (
        "*** Measurement Settings ***\n"
        + NO_MODEL
        + BAD_VALUE
        + "Thread [2] had error: failed to perform HTTP call\n"
        + "/usr/local/bin/perf_analyzer: option '--percentile' requires an argument\n"
        + "  Pass [1] throughput: 10 infer/sec.\n"
    )

    assert error_lines(output) == [
        NO_MODEL.strip(),
        BAD_VALUE.strip(),
        "Thread [2] had error: failed to perform HTTP call",
        "/usr/local/bin/perf_analyzer: option '--percentile' requires an argument",
    ]


def test_error_lines_include_an_unstable_measurement_and_skip_the_rest() -> None:
    assert error_lines(FIRST_UNSTABLE) == [
        "Failed to obtain stable measurement within 3 measurement windows for concurrency 1. Please try to "
        "increase the --measurement-request-count.",
        "Failed to obtain stable measurement.",
    ]
    assert error_lines(DECOUPLED_ERROR) == []


# perf_analyzer 2.60 on tests/e2e/stacks/origin without its data volume: the generic line first, the
# model's own error behind it
MODEL_ERROR = (
    "Request concurrency: 1\n"
    "  Pass [1] cb::Error: Failed to maintain requested inference load. Worker thread(s) failed to generate "
    "concurrent requests.\n"
    "Failed to maintain requested inference load. Worker thread(s) failed to generate concurrent requests.\n"
    "Thread [0] had error: Failed to process the request(s) for model 'profile_model_0_0', message: "
    "FileNotFoundError: [Errno 2] No such file or directory: '/data/people/kim.json'\n\nAt:\n"
    "  /models/profile_model/1/model.py(17): execute\n"
)


def test_the_models_own_error_is_the_line_not_perf_analyzers_generic_one() -> None:
    error = explain_failure(99, MODEL_ERROR, 600)

    assert error.message.startswith("perf_analyzer: the model answered with an error: Thread [0] had error: ")
    assert error.message.endswith("No such file or directory: '/data/people/kim.json'")
    assert "server.volumes" in (error.hint or "")


def test_another_model_error_points_at_the_servers_log() -> None:
    output = MODEL_ERROR.replace("FileNotFoundError: [Errno 2] No such file or directory", "KeyError")

    error = explain_failure(99, output, 600)

    assert "KeyError" in error.message and "triton_server.log" in (error.hint or "")
