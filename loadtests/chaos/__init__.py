"""`make chaos`: the fault campaign (issue 15, item 5) as a command anyone can run.

    python -m loadtests.chaos [--trials 3] [--kinds web1,pg_stop,...] [--clients 250]
                              [--seed N] [--quick]

It starts a private stack (a PostgreSQL cluster of its own, a private Redis, an
SMTP sink that records every message and can refuse, gunicorn, the supervised
worker), runs rushes over the JSON API with careful clients (X-Request-ID and
Idempotency-Key on every request, retries when the outcome is unknown), strikes
each fault kind at random moments, and checks histories, SQL, Redis and the
sink; report in chaos-results/<UTC timestamp>/. Non-zero exit when an invariant fails.

    args       the command line
    servers    private PostgreSQL and Redis, the recording SMTP sink, the worker supervisor
    rig        the stack built from them and loadtests/stack.py; people and events
    client     the careful client
    history    one attempt of the history, ok / fail / info
    faults     the fault kinds
    deadhold   the process that leaves a seat hold behind
    campaign   rounds of trials, the checks after each and at the end
    evidence   SQL, Redis and the sink's record, read for the checker
    checker    pure functions: the numbers of the table
    table      the table
    main       `python -m loadtests.chaos`
"""
