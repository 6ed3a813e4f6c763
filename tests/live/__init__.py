"""Tests against a real gunicorn over real HTTP."""
