"""The chaos campaign's checker, on synthetic histories: no servers."""
