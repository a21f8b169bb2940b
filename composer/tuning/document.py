"""tune.json: every measurement of a search and its answer, in one document. Pure.

``measurements`` counts perf_analyzer runs; ``candidates`` holds each configuration tried (its
``config``, ``rows`` per concurrency, ``status``); ``best``, each of ``tied`` and ``baseline`` have
the form ``{config, concurrency, throughput_infer_per_sec, throughput_interval, p99_latency_us, …}``;
``gain_over_baseline`` is ``{value, low, high}`` (fractions). A search that was interrupted or
found nothing that meets the constraints says so in ``status`` and still holds all of the above.
"""

from __future__ import annotations

from typing import Any

from composer.tuning.search import Final, Outcome, Search
from composer.tuning.space import Candidate
from composer.tuning.stats import Measurement, meets

STATUSES = ("running", "ok", "no_candidate", "interrupted", "failed")


def entry(candidate: Candidate, result: Measurement, search: Search, rounds: int | None = None) -> dict[str, Any]:
    pct = search.settings.percentile
    row = result.as_dict(pct)
    out: dict[str, Any] = {
        "config": candidate.as_dict(),
        "concurrency": result.concurrency,
        "throughput_infer_per_sec": row["throughput_infer_per_sec"],
        "throughput_interval": row["throughput_interval"],
        f"p{pct}_latency_us": row[f"p{pct}_latency_us"],
        f"p{pct}_latency_interval": row[f"p{pct}_latency_interval"],
        "meets_constraints": meets(result, search.settings),
    }
    if rounds is not None:
        out["rounds"] = rounds
    return out


def _final(final: Final | None, search: Search) -> dict[str, Any] | None:
    if final is None:
        return None
    out = entry(final.candidate, final.result, search, final.rounds)
    if final.missed_at:  # re-measured there, it broke the constraints: stepped down to a lower load
        out["missed_constraints_at"] = list(final.missed_at)
    return out


def _candidates(search: Search) -> list[dict[str, Any]]:
    pct = search.settings.percentile
    out = []
    for trial in search.trials.values():
        item: dict[str, Any] = {
            "config": trial.candidate.as_dict(),
            "status": trial.status,
            "rows": [dict(p.as_dict(pct), meets_constraints=meets(p, search.settings)) for p in trial.points],
            "chosen_concurrency": None if trial.chosen is None else trial.chosen.concurrency,
            "baseline": trial.candidate == search.space.baseline,
        }
        if trial.reason:
            item["reason"] = trial.reason
        out.append(item)
    return out


def recommendation(outcome: Outcome, search: Search) -> str:
    """One sentence: what to run, and by how much it beats the baseline, with its interval."""
    if outcome.best is None:
        if outcome.closest is None:
            return "nothing was measured"
        candidate, point = outcome.closest
        return (
            f"no candidate met the constraints; the closest: {candidate.label()} at concurrency "
            f"{point.concurrency} ({point.throughput:,.0f} infer/s, p{search.settings.percentile} "
            f"{point.latency_us / 1000:.2f} ms)"
        )
    best = outcome.best
    if best.candidate == search.space.baseline:
        return "keep your configuration: nothing beats it beyond noise"
    text = f"use {best.candidate.label()} at concurrency {best.result.concurrency}"
    if outcome.gain is not None:
        g = outcome.gain
        text += (
            f": {float(g['value']) * 100:+.1f} % {g['metric']} over your configuration "
            f"(interval {float(g['low']) * 100:+.1f} % … {float(g['high']) * 100:+.1f} %)"
        )
    return text


def tune_document(
    search: Search, outcome: Outcome, *, status: str, facts: dict[str, Any], error: str | None = None
) -> dict[str, Any]:
    """The tune.json document; ``facts`` are what the lab side knows (model, release, stack, times)."""
    assert status in STATUSES, status
    space = search.space
    doc: dict[str, Any] = {
        **facts,
        "status": status,
        "mode": search.settings.mode,
        "objective": search.settings.objective,
        "constraints": search.settings.constraints(),
        "space": {
            "instances": list(space.instances),
            "max_batch_size": list(space.max_batch_sizes),
            "dynamic_batching": list(space.dynamic_batching),
            "concurrency": list(space.concurrencies),
        },
        "measurements": search.measurements,
        "max_measurements": search.settings.max_measurements,
        "budget_spent": search.budget_spent,
        "wall_s": round(search.wall_s(), 2),
        "candidates": _candidates(search),
        "baseline": _final(outcome.baseline, search),
        "best": _final(outcome.best, search),
        "tied": [_final(f, search) for f in outcome.tied],
        "finalists": [_final(f, search) for f in outcome.finals],
        "gain_over_baseline": outcome.gain,
        "closest": None if outcome.closest is None else entry(*outcome.closest, search),
        "recommendation": recommendation(outcome, search),
    }
    if error:
        doc["error"] = error
    return doc
