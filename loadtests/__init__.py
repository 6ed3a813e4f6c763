"""Load tests for Turnout: Locust scenarios, wrk scripts and `make bench` (loadtests/bench/).

Nothing here is imported by the app; tests/live/test_rush_smoke.py reuses the
scenarios and the SQL invariant checks.
"""
