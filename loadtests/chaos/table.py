"""The campaign's table: one row per fault kind and a total, as Markdown."""

from __future__ import annotations

from collections.abc import Iterable

from loadtests.chaos.checker import DELIVERY_LIMIT_S, TrialResult

COLUMNS = [
    ("trials", "trials"), ("requests", "requests"), ("acknowledged", "acked (2xx)"),
    ("unknown", "no answer / 5xx"),
    ("unknown_committed", "of which committed"), ("lost", "lost"), ("oversold", "oversold"),
    ("duplicates", "duplicates"), ("false_already", "false 'already registered'"),
    ("false_full", "false 'full'"), ("wrong_nothing_saved", "wrong 'nothing was saved'"),
    ("drift", "counter drift"), ("emails_lost", "emails lost"),
    ("emails_doubled", "emails doubled"), ("smtp_window", "same Message-ID again (SMTP window)"),
    ("unavailable_s", "unavailable s"), ("drain_s", "emails drained, s after outage (max)"),
    ("worker_exits_unplanned", "worker exits not caused by us"),
    ("recovered", "recovered by itself"),
]


def summarize(results: Iterable[TrialResult]) -> dict:
    """The sums (drift unmeasured counts as '?'), the slowest drain, recovered k/n."""
    results = list(results)
    row: dict = {"trials": len(results)}
    for name, _ in COLUMNS:
        if name in ("trials", "drain_s", "recovered", "drift"):
            continue
        row[name] = sum(getattr(r, name) for r in results)
    drifts = [r.drift for r in results]
    row["drift"] = "?" if any(d is None for d in drifts) else sum(drifts)
    drains = [r.drain_s for r in results]
    row["drain_s"] = ("not all" if any(d is None for d in drains)
                      else max(drains, default=0.0))
    ok = sum(1 for r in results if r.recovered)
    row["recovered"] = ("yes" if ok == len(results) else "no" if ok == 0
                        else f"{ok}/{len(results)}")
    return row


def markdown(results: list[TrialResult], titles: dict[str, str]) -> str:
    kinds = list(dict.fromkeys(r.kind for r in results))
    lines = ["| fault | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for label, rows in [(titles.get(k, k), [r for r in results if r.kind == k])
                        for k in kinds] + [("**total**", results)]:
        summary = summarize(rows)
        lines.append(f"| {label} | " + " | ".join(str(summary[name]) for name, _ in COLUMNS)
                     + " |")
    return "\n".join(lines)


def failed(results: Iterable[TrialResult]) -> list[str]:
    """Why the campaign fails: each broken invariant with the trials that broke it."""
    reasons = []
    results = list(results)
    for name in TrialResult.FAILING:
        bad = [r.trial for r in results if getattr(r, name)]
        if bad:
            reasons.append(f"{name}: trials {bad}")
    slow = [r.trial for r in results if r.drain_s is None or r.drain_s > DELIVERY_LIMIT_S]
    if slow:
        reasons.append(f"emails not drained within {DELIVERY_LIMIT_S:.0f} s: trials {slow}")
    return reasons
