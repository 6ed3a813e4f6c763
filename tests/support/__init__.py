"""Test support shared by tests/ and loadtests/: servers, databases, Redis, races, faults."""
