"""ASVS finding "example secret accepted": production refuses a missing, placeholder or short
SECRET_KEY; a local run (`make run`) keeps its generated one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.processes import ROOT

EXAMPLE = ROOT / "deploy" / "turnout.env.example"
STRONG = "9f" * 32


def example_value(name: str) -> str:
    for line in EXAMPLE.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} not in {EXAMPLE}")


def start(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """Import wsgi (what gunicorn does) in a clean process with these settings."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TURNOUT_", "SECRET_KEY", "DATABASE_URL"))}
    clean.update({"TURNOUT_INSTANCE": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
                  **env})
    return subprocess.run([sys.executable, "-c", "import wsgi; print('started')"], cwd=ROOT,
                          env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, why", [
    ({"SECRET_KEY": example_value("SECRET_KEY")}, "placeholder of an example file"),
    ({"SECRET_KEY": "dev"}, "shorter than 32 bytes"),
    ({"SECRET_KEY": "x" * 31}, "shorter than 32 bytes"),
    ({"TURNOUT_ENV": "production"}, "SECRET_KEY is not set"),
    ({"TURNOUT_ENV": "production", "SECRET_KEY": ""}, "SECRET_KEY is not set"),
])
def test_production_refuses_a_weak_key(env, why, tmp_path):
    result = start(env, tmp_path)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "Refusing to start: " in result.stderr and why in result.stderr
    assert "secrets.token_hex(32)" in result.stderr  # says how to make a good one


def test_the_example_files_key_is_refused_with_the_example_files_settings(tmp_path):
    """deploy/turnout.env.example as shipped, placeholder and all, does not start."""
    result = start({"SECRET_KEY": example_value("SECRET_KEY"),
                    "TURNOUT_ENV": example_value("TURNOUT_ENV")}, tmp_path)
    assert result.returncode != 0 and "placeholder" in result.stderr


def test_a_strong_key_starts(tmp_path):
    result = start({"SECRET_KEY": STRONG, "TURNOUT_ENV": "production"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_local_run_generates_and_keeps_a_strong_key(tmp_path):
    """No SECRET_KEY and no TURNOUT_ENV (make run): a generated key, the same next time."""
    first = start({}, tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text().strip()
    assert len(bytes.fromhex(key)) == 32
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert start({}, tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text().strip() == key
