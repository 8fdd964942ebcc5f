"""Transports against real local sockets: what goes on the wire and how answers are classified."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from servers import HangingServer, RecordingServer

from runlink.protocol import make_event
from runlink.tracker.process import free_port
from runlink.transports import FileTransport, HttpTransport, Outcome, classify_status


def _body(n: int = 2) -> bytes:
    events = [make_event("metric", {"key": f"k{i}", "value": i}) for i in range(n)]
    return gzip.compress(json.dumps({"events": events}).encode())


def test_http_posts_gzip_with_bearer_token(server: RecordingServer) -> None:
    transport = HttpTransport(server.url + "/api/v1/events", "s3cret-token")
    result = transport.send(_body(3), timeout=5)
    assert result.ok and result.status == 202
    (request,) = server.requests
    assert request["path"] == "/api/v1/events"
    assert request["headers"]["Authorization"] == "Bearer s3cret-token"
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert [e["payload"]["key"] for e in request["events"]] == ["k0", "k1", "k2"]
    assert "s3cret-token" not in repr(transport)


def test_no_token_sends_no_authorization_header(server: RecordingServer) -> None:
    assert HttpTransport(server.url + "/api/v1/events", None).send(_body(), 5).ok
    assert "Authorization" not in server.requests[0]["headers"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, Outcome.OK), (202, Outcome.OK), (429, Outcome.RETRY), (500, Outcome.RETRY), (503, Outcome.RETRY),
     (400, Outcome.REJECTED), (401, Outcome.REJECTED), (403, Outcome.REJECTED), (413, Outcome.REJECTED),
     (422, Outcome.REJECTED)],
)
def test_status_classification(server: RecordingServer, status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome
    server.statuses.append(status)
    result = HttpTransport(server.url + "/api/v1/events", "t").send(_body(), 5)
    assert result.outcome is outcome and result.status == status


def test_connection_refused_is_retryable_and_does_not_raise() -> None:
    result = HttpTransport(f"http://127.0.0.1:{free_port()}/api/v1/events", "t").send(_body(), 2)
    assert result.outcome is Outcome.RETRY and result.status is None


def test_hanging_server_times_out_within_the_given_timeout(hanging: HangingServer) -> None:
    transport = HttpTransport(hanging.url + "/api/v1/events", "t")
    start = time.monotonic()
    result = transport.send(_body(), timeout=0.5)
    elapsed = time.monotonic() - start
    assert result.outcome is Outcome.RETRY
    assert elapsed < 1.5, elapsed


def test_file_transport_writes_json_lines(tmp_path) -> None:
    transport = FileTransport(tmp_path / "out" / "events.jsonl")
    assert transport.send(_body(2), 1).ok and transport.send(_body(1), 1).ok
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["type"] == "metric" for line in lines)
    assert [e["payload"]["key"] for e in transport.read_events()] == ["k0", "k1", "k0"]
