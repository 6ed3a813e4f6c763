"""`make chaos`, small: one trial each of the cheap faults (a web worker killed, Redis
flushed, a dead seat hold) through the same package (loadtests/chaos), and the
invariants no fault may break: nothing acknowledged is lost, nothing oversold, nobody
twice; and the answers issue 15 made true: no false "already registered", no false
"full" past the hold window, no wrong "nothing was saved". The emails are the full
campaign's to report (they need minutes)."""

from __future__ import annotations

import pytest

from loadtests.chaos.args import parse_args
from loadtests.chaos.campaign import Campaign
from loadtests.chaos.faults import CHEAP
from loadtests.chaos.servers import missing_binaries
from loadtests.chaos.table import markdown, summarize

MISSING = missing_binaries()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"the chaos campaign needs {MISSING}")


def test_a_small_campaign_loses_nothing_and_tells_no_false_answer(tmp_path):
    args = parse_args(["--quick", "--kinds", ",".join(CHEAP), "--trials", "1",
                       "--clients", "60", "--seed", "15", "--window", "4",
                       "--drift-after", "5", "--drain-seconds", "10", "--out", str(tmp_path)])
    campaign = Campaign(args, tmp_path, say=print)
    try:
        trials = campaign.run()
    finally:
        campaign.rig.close()
    results = [t.result for t in trials]
    print(markdown(results, {}))
    assert sorted(t.fault.name for t in trials) == sorted(CHEAP)
    assert all(t.record is not None and "error" not in t.record.detail for t in trials), \
        [t.record for t in trials]
    total = summarize(results)
    assert total["requests"] >= 60 * len(CHEAP)
    assert total["acknowledged"] > 0
    assert (total["lost"], total["oversold"], total["duplicates"]) == (0, 0, 0), total
    assert (total["false_already"], total["false_full"], total["wrong_nothing_saved"]) == (
        0, 0, 0), total
