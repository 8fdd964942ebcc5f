"""Real local servers for the client's fault cases: a recording HTTP endpoint and a socket that never answers.

They are real TCP servers (no mocks): the client under test goes through requests, sockets and gzip exactly
as it does against the tracker. End-to-end tests against the real tracker live in test_e2e_tracker.py.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: RecordingServer

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        try:
            events = json.loads(body)["events"]
        except Exception:
            events = None
        status = self.server.next_status(events)
        request = {"path": self.path, "headers": dict(self.headers), "status": status, "raw_bytes": len(raw),
                   "body_bytes": len(body)}
        try:
            request["events"] = json.loads(body)["events"]
        except Exception:
            request["events"] = None
        with self.server.lock:
            self.server.requests.append(request)
        answer = json.dumps({"accepted": len(request["events"] or [])}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class RecordingServer(ThreadingHTTPServer):
    """An HTTP endpoint that records every POSTed batch and answers with scripted status codes (202 by default)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, statuses: list[int] | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.statuses: deque[int] = deque(statuses or [])
        self.default_status = 202
        #: answers by content when it returns a status (a poisoned batch gets 500 while others pass)
        self.status_for: Callable[[list[dict[str, Any]] | None], int | None] | None = None
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_status(self, events: list[dict[str, Any]] | None = None) -> int:
        if self.status_for is not None:
            status = self.status_for(events)
            if status is not None:
                return status
        with self.lock:
            return self.statuses.popleft() if self.statuses else self.default_status

    def accepted_events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for r in self.requests if 200 <= r["status"] < 300 for e in (r["events"] or [])]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class HangingServer:
    """Accepts TCP connections and never answers: the worst tracker there is."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.connections: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)  # held open, never read, never answered

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self.connections:
            conn.close()
