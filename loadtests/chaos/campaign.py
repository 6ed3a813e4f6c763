"""One campaign: rounds of trials (a rush with one fault in it), the checks after each,
and after the last one the emails, the drift and the table."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtests.chaos import checker, evidence
from loadtests.chaos.checker import Evidence, TrialResult
from loadtests.chaos.client import CarefulClient, Person, Step
from loadtests.chaos.faults import FAULTS, Fault, FaultRecord, inject
from loadtests.chaos.history import CANCEL, REGISTER, HistoryFile
from loadtests.chaos.rig import Rig
from tests.support.processes import ROOT

P_CANCEL, P_AGAIN = 0.3, 0.4  # of the acknowledged: cancel; of those: register again


@dataclass
class Trial:
    index: int
    fault: Fault
    events: list[int]
    history: Path
    started: float
    record: FaultRecord | None = None
    result: TrialResult | None = None
    drift_due: float = 0.0
    finished: float = 0.0
    notes: list[str] = field(default_factory=list)


def order(kinds: list[str], trials: int, rng: random.Random) -> list[str]:
    """Rounds of one trial per kind, each round shuffled."""
    out = []
    for _ in range(trials):
        round_ = list(kinds)
        rng.shuffle(round_)
        out += round_
    return out


class Campaign:
    def __init__(self, args, run_dir: Path, say=print) -> None:
        self.args, self.run_dir, self.say = args, run_dir, say
        self.rng = random.Random(args.seed)
        self.rig = Rig(run_dir, web_workers=args.web_workers, web_threads=args.web_threads,
                       say=say)
        self.trials: list[Trial] = []
        self.people: list[Person] = []
        self.reconcile: dict = {}

    # --- the run ------------------------------------------------------------------------

    def run(self) -> list[Trial]:
        self.rig.start()
        started = time.monotonic()
        self.people = self.rig.seed_people(self.args.clients)
        self.say(f"{len(self.people)} people inserted and signed in "
                 f"({time.monotonic() - started:.1f} s)")
        kinds = order(self.args.kinds, self.args.trials, self.rng)
        for index, kind in enumerate(kinds, 1):
            fault = FAULTS[kind]
            if fault.wipes_redis:
                self.drift_checks(wait=True)
            trial = self.run_trial(index, fault)
            self.trials.append(trial)
            self.drift_checks(wait=False)
        self.finish()
        return self.trials

    def run_trial(self, index: int, fault: Fault) -> Trial:
        args, rig = self.args, self.rig
        rng = random.Random(self.rng.random())
        seats = rig.create_event(f"Trial {index} seats", rng.randint(8, 25))
        waitlist = rig.create_event(f"Trial {index} waitlist", rng.randint(5, 12),
                                    waitlist=True, waitlist_capacity=rng.choice([None, 10]))
        events = [seats, waitlist]
        options = {"smtp_down": args.smtp_down}
        dead_person = None
        if fault.name == "dead_hold":
            held = rig.create_event(f"Trial {index} dead hold", 3)
            events.append(held)
            dead_person = self.people[0]
            options["dead_hold"] = (held, dead_person.user_id)
        trial = Trial(index, fault, events,
                      self.run_dir / f"history-{index:02d}-{fault.name}.jsonl", time.time())
        history = HistoryFile(trial.history)
        go = threading.Event()
        give_up_at = time.time() + args.window + 120
        threads = []
        for client, person in enumerate(self.people):
            plan = self.plan(rng, events, args.window)
            if person is dead_person:
                plan = [Step(REGISTER, events[-1], 0.2)]
            worker = CarefulClient(rig.web.url, person, index, client, history,
                                   random.Random(rng.random()))
            threads.append(threading.Thread(target=worker.run, args=(plan, go, give_up_at),
                                            daemon=True))
        for t in threads:
            t.start()
        if fault.before_rush:
            trial.record = inject(fault, rig, rng, options)
        fault_thread = None
        if not fault.before_rush:
            moment = rng.uniform(*fault.moment) * args.window

            def strike() -> None:
                time.sleep(moment)
                trial.record = inject(fault, rig, rng, options)

            fault_thread = threading.Thread(target=strike, daemon=True)
        go.set()
        if fault_thread:
            fault_thread.start()
        for t in threads:
            t.join(max(1.0, give_up_at - time.time()))
        if fault_thread:
            fault_thread.join(300)
        history.close()
        trial.finished = time.time()
        trial.drift_due = (trial.record.ended if trial.record else trial.finished) \
            + args.drift_after
        trial.result = self.check_answers(trial, history)
        self.say_trial(trial)
        return trial

    @staticmethod
    def plan(rng: random.Random, events: list[int], window: float) -> list[Step]:
        """Half the clients click at the release, the rest over the window; some of the
        acknowledged cancel, some of those register again."""
        event_id = rng.choice(events)
        delay = 0.0 if rng.random() < 0.5 else rng.uniform(0, window)
        steps = [Step(REGISTER, event_id, delay)]
        if rng.random() < P_CANCEL:
            steps.append(Step(CANCEL, event_id, rng.uniform(0.3, 2.0), only_if_ok=True))
            if rng.random() < P_AGAIN:
                steps.append(Step(REGISTER, event_id, rng.uniform(0.3, 2.0), only_if_ok=True))
        return steps

    # --- checks --------------------------------------------------------------------------

    def evidence(self, trial: Trial, attempts) -> Evidence:
        events, rows, changes, _mails = evidence.read_sql(self.rig.engine, trial.events)
        return Evidence(attempts, events, rows, changes)

    def check_answers(self, trial: Trial, history: HistoryFile) -> TrialResult:
        ev = self.evidence(trial, history.attempts)
        return checker.check_answers(trial.index, trial.fault.name, ev,
                                     hold_window=self.args.hold_window, grace=self.args.grace)

    def drift_checks(self, *, wait: bool) -> None:
        """Redis against SQL for every trial whose fault ended drift_after seconds ago.

        With wait (before Redis is wiped, and at the end): every pending trial is read
        now, and a trial still drifting is waited for until it is due and read again.
        A trial's events see no more requests, so drift there can only shrink: none
        now is none at its due time too.
        """
        pending = [t for t in self.trials if t.result.drift is None]
        for t in pending:
            due = t.drift_due <= time.time()
            if not (due or wait):
                continue
            drift = self.read_drift(t)
            if drift is None:
                continue
            if due or drift == 0:
                t.result.drift = drift
                continue
            self.say(f"   trial {t.index}: Redis {drift} off SQL; reading it again until "
                     f"it is due ({t.drift_due - time.time():.0f} s), before Redis is wiped")
            while drift != 0 and time.time() < t.drift_due:
                time.sleep(max(0.0, min(5.0, t.drift_due - time.time())))
                drift = self.read_drift(t)
            t.result.drift = drift

    def read_drift(self, t: Trial) -> int | None:
        try:
            views = evidence.read_redis(self.rig.redis.url, t.events)
            events, rows, _changes, _mails = evidence.read_sql(self.rig.engine, t.events)
        except Exception as exc:  # Redis or SQL down: try again later
            t.notes.append(f"drift check failed: {exc}")
            return None
        return sum(checker.drift(events[e], rows, views[e]) for e in t.events)

    def finish(self) -> None:
        """The emails (until drained, or the SPEC's 5 minutes after the last outage), the
        last drift checks, the final reconcile, then the email numbers of every trial."""
        last_end = max((t.record.ended for t in self.trials if t.record), default=time.time())
        deadline = last_end + self.args.drain_seconds
        self.say(f"waiting for the emails to drain (at most until {self.args.drain_seconds:.0f}"
                 f" s after the last outage) and for the drift checks")
        while time.time() < deadline:
            pending = evidence.outbox_pending(self.rig.engine)
            if pending == 0:
                break
            self.say(f"   outbox rows not sent yet: {pending}")
            time.sleep(5)
        time.sleep(2)  # the last message's arrival
        self.drift_checks(wait=True)
        self.final_reconcile()
        received = evidence.received(list(self.rig.sink.record))
        restarts = self.rig.supervisor.restarts
        mail_outages_ended = [t.record.ended for t in self.trials
                              if t.record and t.fault.name in checker.MAIL_FAULTS]
        for i, t in enumerate(self.trials):
            _events, _rows, changes, mails = evidence.read_sql(self.rig.engine, t.events)
            outage_end = t.record.ended if t.record else t.finished
            mine = {m.id for m in mails}
            check = checker.emails(changes, mails, [r for r in received if r.outbox_id in mine],
                                   outage_end, mail_outages_ended)
            t.result.emails_lost, t.result.emails_doubled = check.lost, check.doubled
            t.result.smtp_window, t.result.drain_s = check.smtp_window, check.drain_s
            until = self.trials[i + 1].started if i + 1 < len(self.trials) else time.time()
            t.result.worker_exits_unplanned = sum(
                1 for r in restarts if not r.planned and t.started <= r.died_at < until)

    def final_reconcile(self) -> None:
        proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "seats",
                               "reconcile"], cwd=ROOT, env=self.rig.env, capture_output=True,
                              text=True, timeout=300)
        (self.run_dir / "reconcile.txt").write_text(proc.stdout + proc.stderr)
        from loadtests.invariants import reconcile_checks

        check = reconcile_checks(proc.stdout, proc.returncode)[0]
        self.reconcile = {"ok": check.ok, "detail": check.detail}

    # --- output --------------------------------------------------------------------------

    def say_trial(self, t: Trial) -> None:
        r, rec = t.result, t.record
        detail = (f"{rec.detail}, outage {rec.ended - rec.started:.1f} s" if rec else "no fault")
        self.say(f"trial {t.index:2d} {t.fault.name:<13} {r.requests} requests, "
                 f"{r.acknowledged} ok, {r.unknown} unknown; lost {r.lost}, oversold "
                 f"{r.oversold}, dup {r.duplicates}, false already {r.false_already}, "
                 f"false full {r.false_full}, wrong 'nothing saved' {r.wrong_nothing_saved}, "
                 f"unavailable {r.unavailable_s} s [{detail}]")

    def results(self) -> dict:
        return {"args": {k: str(v) for k, v in vars(self.args).items()},
                "reconcile": self.reconcile,
                "worker_restarts": [asdict(r) for r in self.rig.supervisor.restarts],
                "trials": [{"index": t.index, "kind": t.fault.name, "events": t.events,
                            "fault": asdict(t.record) if t.record else None,
                            "result": asdict(t.result), "recovered": t.result.recovered,
                            "notes": t.notes, "history": t.history.name}
                           for t in self.trials]}

    def write_results(self) -> None:
        (self.run_dir / "results.json").write_text(json.dumps(self.results(), indent=2))
