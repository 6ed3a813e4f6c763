"""`make bench`: the rush and the ratios, measured on this machine, invariants checked in SQL.

    python -m loadtests.bench [--people 1000] [--seats 100] [--duration 10] [--matrix]

It brings up gunicorn (deploy/gunicorn.conf.py), nginx, the worker, an SMTP
sink, a fresh PostgreSQL database and a Redis database index of its own;
prepares people in bulk; runs the Locust scenarios (rush through htmx and
through the JSON API, browse and register) and the wrk ratio runs (a) floor,
(b) winning registration, (c) full event, (d) winning with the Redis gate
off, directly and through nginx; checks the invariants in SQL; writes
bench-results/<timestamp>/ (report.md, chart.png, results.json, logs); and
stops everything it started, also on Ctrl-C or failure.

One module a step, in the order of a run:

    args       the command line
    state      Bench: one run's folder, log, services, results; stops everything
    stackup    database, Redis, the SMTP sink, the worker, gunicorn, nginx
    seed       people and events in bulk SQL, browser sessions for wrk
    scenarios  the Locust rushes, browse and register, the rush's emails
    ratios     the wrk ratio runs and the gunicorn settings matrix
    checks     invariants after every run, timelines, results.json and report.md
    main       the run from start to end, `python -m loadtests.bench`
"""
