"""Tests for webapp.auth: sign-up, sign-in, sign-out, the users CLI."""
