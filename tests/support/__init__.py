"""Test support shared by tests/ and loadtests/: servers, databases, Redis, races, faults.

Library code only, no fixtures: the conftest.py files wrap these in thin fixtures.

    app        the suite's settings, a fresh app on clean data, a second app
    clients    the Flask test clients (form sign-in with CSRF, the JSON API)
    control    the control run: a naive check-then-write registration that oversells
    control_wsgi  the same for a live gunicorn (`tests.support.control_wsgi:app`)
    databases  SQLite files and private PostgreSQL databases, migrated
    faults     SQLAlchemy listeners that fail or observe commits
    forms      the organizer's event form pages: URLs, field errors, values kept
    live       real gunicorn servers on free ports, their logs
    mail       a real SMTP server that can be told how to answer, the worker process
    processes  process trees we start and stop by pid, free ports, waiting
    races      calls and HTTP clicks released at once by a barrier, tallies
    redisdb    a Redis database index of our own, or a private redis-server
    event_data a valid EventCreate for calling schemas and services directly
    samples    valid event forms and API bodies, dates
    seat_keys  an event's seat-gate keys in Redis: holds in flight, forget them
    signin     people signed in to a live server through the real form
    state      what SQL and Redis hold for an event (counts, seats, the activity journal)
"""
