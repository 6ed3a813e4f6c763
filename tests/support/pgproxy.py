"""A TCP proxy in front of PostgreSQL that breaks the link at the worst moment.

Armed with a marker (bytes of a statement, e.g. b"COMMIT"), it forwards the
client's message that carries the marker to the server ("deliver") or drops it
("drop"), then cuts that client's connection before any answer comes back:
the client cannot tell whether the server committed. It can also refuse every
connection, as a stopped server does. Real sockets, a real server behind.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import make_url


@dataclass
class _Trap:
    marker: bytes
    deliver: bool
    settle: float
    stay_down: bool


class CuttingProxy:
    def __init__(self, upstream_url: str) -> None:
        url = make_url(upstream_url)
        self.upstream = (url.host or "127.0.0.1", url.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = url.set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)
        self._lock = threading.Lock()
        self._trap: _Trap | None = None
        self.refusing = False
        self.cuts = 0
        self._sockets: set[socket.socket] = set()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True, name="pgproxy").start()

    # --- what a test does ---------------------------------------------------------

    def cut_at(self, marker: bytes, *, deliver: bool, settle: float = 0.3,
               stay_down: bool = False) -> None:
        """The next client message carrying `marker`: delivered to the server (and
        `settle` seconds to run it) or dropped; then the link is cut, once. With
        `stay_down`, every connection is refused from then on (until refuse(False))."""
        with self._lock:
            self._trap = _Trap(marker, deliver, settle, stay_down)

    def refuse(self, refusing: bool = True) -> None:
        """Refuse new connections and cut the open ones (a stopped server); False: serve."""
        self.refusing = refusing
        if refusing:
            self._close_all()

    def close(self) -> None:
        self._stopped = True
        self._listener.close()
        self._close_all()

    # --- the proxy ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            link = {"cut": False}
            threading.Thread(target=self._pump, args=(client, server, link, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, link, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, link: dict,
              from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data or link["cut"]:
                    break
                trap = self._springs(data) if from_client else None
                if trap is not None:
                    link["cut"] = True  # the server's answer is not passed on
                    self.cuts += 1
                    if trap.stay_down:
                        self.refusing = True
                    if trap.deliver:
                        sink.sendall(data)
                        time.sleep(trap.settle)  # the server runs it
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, sink)

    def _springs(self, data: bytes) -> _Trap | None:
        """The armed trap, disarmed, if `data` carries its marker."""
        with self._lock:
            trap = self._trap
            if trap is None or trap.marker not in data:
                return None
            self._trap = None
            return trap

    def _close(self, *socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._sockets.discard(sock)

    def _close_all(self) -> None:
        with self._lock:
            socks = list(self._sockets)
        self._close(*socks)
