"""Real local receivers for alert notifications: an HTTP webhook endpoint and a minimal SMTP server, both on
127.0.0.1 in daemon threads. Tests wait on them with deadlines (no sleeps as synchronisation)."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Collects JSON POSTs. `fail_first` answers 500 that many times first; `hang_s` delays every answer."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0.0) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.hang_s = hang_s
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.cond:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                if receiver.hang_s:
                    receiver.stop_event.wait(receiver.hang_s)
                if failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                with receiver.cond:
                    receiver.received.append(json.loads(body))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.stop_event = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float = 30.0) -> list[dict[str, Any]]:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"webhook condition not met in {timeout}s; got {self.received!r}")
                self.cond.wait(remaining)
            return list(self.received)

    def close(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


class SMTPReceiver:
    """Just enough SMTP (HELO/EHLO, MAIL, RCPT, DATA, QUIT) to receive messages from smtplib."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 localhost test SMTP\r\n")
                mail: dict[str, Any] = {"rcpt": []}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    upper = cmd.upper()
                    if upper.startswith(("HELO", "EHLO")):
                        self.wfile.write(b"250 localhost\r\n")
                    elif upper.startswith("MAIL FROM"):
                        mail["from"] = cmd[10:].strip()
                        self.wfile.write(b"250 OK\r\n")
                    elif upper.startswith("RCPT TO"):
                        mail["rcpt"].append(cmd[8:].strip().strip("<>"))
                        self.wfile.write(b"250 OK\r\n")
                    elif upper == "DATA":
                        self.wfile.write(b"354 end with .\r\n")
                        data = []
                        while True:
                            chunk = self.rfile.readline()
                            if chunk in (b".\r\n", b".\n", b""):
                                break
                            data.append(chunk.decode("utf-8", "replace"))
                        mail["data"] = "".join(data)
                        with receiver.cond:
                            receiver.messages.append(dict(mail))
                            receiver.cond.notify_all()
                        mail = {"rcpt": []}
                        self.wfile.write(b"250 queued\r\n")
                    elif upper == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 OK\r\n")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} e-mails in {timeout}s, got {len(self.messages)}")
                self.cond.wait(remaining)
            return list(self.messages)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def poll(fetch, ready, timeout: float = 30.0) -> Any:  # noqa: ANN001
    """Call `fetch` until `ready(value)`; fail with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ready(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s; last value: {value!r}"[:4000])
        time.sleep(0.1)  # polling interval; the condition is what the tracker answers
        value = fetch()
    return value
