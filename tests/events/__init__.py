"""Tests for webapp.events: the event list and the event page."""
