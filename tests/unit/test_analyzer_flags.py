"""perf_analyzer's options by version, argv fitted to one, and which perf_analyzer a lab holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest

from composer.analyzer.flags import FLAG_SINCE, FLAG_UNTIL, fit_argv, has_option
from composer.analyzer.identity import assumed, from_answers, from_labels, observe, planned
from composer.core.errors import UsageError

OWN = [
    "perf_analyzer", "-m", "seed_model", "-u", "triton_server:8000", "-i", "http",
    "--concurrency-range", "1:1:1", "--measurement-mode", "count_windows", "--measurement-request-count", "200",
    "-f", "/tmp/x.csv", "--verbose-csv", "--profile-export-file", "/tmp/x.json", "-v",
]


def test_options_appear_and_go_at_the_versions_their_option_tables_say() -> None:
    assert not has_option("2.37.0", "--profile-export-file") and has_option("2.38.0", "--profile-export-file")
    assert not has_option("2.36.0", "--warmup-request-count") and has_option("2.50.0", "--warmup-request-count")
    assert has_option("2.36.0", "--version") and not has_option("2.35.0", "--version")
    assert has_option("2.45.0", "--trace-file") and not has_option("2.46.0", "--trace-file")
    assert has_option("2.53.0", "--schedule") and not has_option("2.56.0", "--schedule")
    for option in ("--measurement-mode", "--verbose-csv", "--max-trials", "--streaming", "--collect-metrics"):
        assert has_option("2.32.0", option)  # in r23.03, the oldest release tisbench runs
    assert has_option(None, "--warmup-request-count")  # an unknown version is given the benefit
    assert set(FLAG_UNTIL) <= set(FLAG_SINCE) | {"--trace-file"}


def test_an_option_tisbench_chose_is_left_out_with_a_line_saying_so() -> None:
    fitted = fit_argv(OWN + ["--max-trials=20"], ["--max-trials=20"], "2.36.0")
    assert "--profile-export-file" not in fitted.argv and "/tmp/x.json" not in fitted.argv
    assert fitted.argv[:7] == OWN[:7] and fitted.argv[-2:] == ["-v", "--max-trials=20"]
    assert "--verbose-csv" in fitted.argv and "count_windows" in fitted.argv
    assert fitted.left_out == [
        "left out --profile-export-file /tmp/x.json: "
        "perf_analyzer 2.36.0 has no --profile-export-file (it came in 2.38.0)"
    ]


def test_an_argv_the_analyzer_fully_knows_is_unchanged() -> None:
    fitted = fit_argv(OWN, [], "2.51.0")
    assert fitted.argv == OWN and fitted.left_out == []
    assert fit_argv(OWN, [], None).argv == OWN


@pytest.mark.parametrize("user", [["--warmup-request-count", "10"], ["--warmup-request-count=10"]])
def test_an_option_the_user_asked_for_is_refused_when_the_analyzer_lacks_it(user: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        fit_argv(OWN + user, user, "2.44.0")
    assert caught.value.exit_code == 2
    assert "--warmup-request-count" in caught.value.message and "2.44.0" in caught.value.message
    assert "2.50.0" in caught.value.message and caught.value.hint
    assert fit_argv(OWN + user, user, "2.50.0").argv == OWN + user


def test_a_removed_option_says_when_it_went() -> None:
    with pytest.raises(UsageError, match=r"removed in 2\.46\.0"):
        fit_argv(OWN + ["--trace-file", "t.json"], ["--trace-file", "t.json"], "2.51.0")


def test_user_args_must_be_the_tail_of_argv() -> None:
    with pytest.raises(ValueError):
        fit_argv(OWN, ["--max-trials=20"], "2.51.0")


def test_a_lab_images_labels_name_its_perf_analyzer() -> None:
    labels = {
        "tisbench.perf-analyzer-version": "2.36.0",
        "tisbench.perf-analyzer-version-source": "binary",
        "tisbench.perf-analyzer-reported": "Perf Analyzer Version 2.36.0 (commit 1a2b)",
    }
    found = from_labels(labels)
    assert found is not None and found.version == "2.36.0" and "--version at build time" in found.source
    assert found.manifest_fields()["perf_analyzer_reported"] == "Perf Analyzer Version 2.36.0 (commit 1a2b)"
    old = from_labels({"tisbench.perf-analyzer-version": "2.60.0"})
    assert old is not None and old.version == "2.60.0" and "before versions were observed" in old.source
    assert from_labels({"tisbench.kind": "sdk"}) is None


def test_an_ngc_container_is_judged_by_its_answers() -> None:
    answered = from_answers("Perf Analyzer Version 2.37.0 (commit 9a8b)\n", {}, "23.08")
    assert answered.version == "2.37.0" and "--version in the sdk container" in answered.source
    # 25.09+: a PyPI wrapper whose binary says 0.0.0; pip knows the wheel
    wrapped = from_answers(
        "Perf Analyzer Version 0.0.0 (commit unknown)\n",
        {"perf-analyzer": "Name: perf-analyzer\nVersion: 2.61.0\n", "tritonclient": "Version: 2.61.0\n"},
        "25.09",
    )
    assert wrapped.version == "2.61.0" and wrapped.source == "pip show perf-analyzer in the sdk container"
    # 23.03–23.06 have no --version
    pip = {"perf-analyzer": "", "tritonclient": "Version: 2.33.0\n"}
    older = from_answers("Usage: perf_analyzer [options]\n", pip, "23.04")
    assert older.version == "2.33.0" and "tritonclient" in older.source
    silent = from_answers("", {"perf-analyzer": "", "tritonclient": ""}, "23.05")
    assert silent.version == "2.34.0" and "assumed from release 23.05" in silent.source


def test_a_lab_plan_knows_its_perf_analyzer_without_docker() -> None:
    assert planned("24.10", "lab").version == "2.51.0" and "lab recipe" in planned("24.10", "lab").source
    assert planned("24.10", "ngc") == assumed("24.10")
    assert planned("23.08", "lab").version == "2.37.0"


class _ExecApi:
    """An engine's exec API: a command is answered by the entry of ``answers`` it contains, or refused."""

    def __init__(self, answers: dict[str, str], refusal: Exception | None = None) -> None:
        self.answers = answers
        self.refusal = refusal
        self.asked: list[list[str]] = []

    def exec_create(self, container_id: str, argv: list[str], **_: Any) -> dict[str, str]:
        if self.refusal is not None:
            raise self.refusal
        self.asked.append(argv)
        return {"Id": " ".join(argv)}

    def exec_start(self, exec_id: str, **_: Any) -> Iterator[bytes]:
        command = next((c for c in self.answers if c in exec_id), None)
        yield (self.answers[command] if command else "").encode()

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"ExitCode": 0}


class _ExecClient:
    def __init__(self, api: _ExecApi) -> None:
        self.api = api


def test_an_sdk_container_is_asked_its_perf_analyzer_version() -> None:
    api = _ExecApi({"perf_analyzer --version": "Perf Analyzer Version 2.37.0 (commit 9a8b)\n"})
    found = observe(_ExecClient(api), "sdk", {}, "23.08")  # type: ignore[arg-type]
    assert found.version == "2.37.0" and found.reported == "Perf Analyzer Version 2.37.0 (commit 9a8b)"
    assert len(api.asked) == 1


def test_an_sdk_container_the_engine_will_not_ask_leaves_the_release_assumed() -> None:
    api = _ExecApi({}, refusal=docker.errors.NotFound("no such container"))
    found = observe(_ExecClient(api), "sdk", {}, "23.05")  # type: ignore[arg-type]
    assert found == assumed("23.05")
