"""The one tracker API client against a real tracker and real non-tracker servers: each failure is one line a
person can act on, with its HTTP status."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runlink.api_client import TrackerClient, TrackerError
from runlink.tracker.process import free_port


class _HtmlHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = b"<html><body>some other web site</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def html_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sqlite_tracker(tracker_factory: Any) -> Any:
    return tracker_factory(backend="sqlite")


def test_reads_registry_and_404(sqlite_tracker: Any, unique: str) -> None:
    with TrackerClient(sqlite_tracker.url, sqlite_tracker.token, retries=0) as client:
        assert client.instance(f"missing-{unique}") is None
        created = client.create_instance({"name": f"af-{unique}", "url": "http://127.0.0.1:1", "uid": unique,
                                          "api_version": "v2", "auth_kind": "none"})
        assert created["name"] == f"af-{unique}"
        assert f"af-{unique}" in [item["name"] for item in client.instances()]
        assert client.get("/api/v1/dag-runs", dag_id=f"none-{unique}", state=None)["items"] == []


def test_unauthorized_names_runlink_token(sqlite_tracker: Any) -> None:
    with TrackerClient(sqlite_tracker.url, "not-a-token", retries=0) as client, pytest.raises(TrackerError) as err:
        client.get("/api/v1/airflow-instances")
    assert err.value.status == 401
    assert "RUNLINK_TOKEN" in str(err.value) and "\n" not in str(err.value)


def test_refusal_carries_status_and_detail(sqlite_tracker: Any) -> None:
    with TrackerClient(sqlite_tracker.url, sqlite_tracker.token, retries=0) as client, \
            pytest.raises(TrackerError) as err:
        client.post("/api/v1/airflow-instances", json={"name": ""})
    assert err.value.status == 422 and "HTTP 422" in str(err.value) and "\n" not in str(err.value)


def test_other_site_is_not_an_api_root(html_site: str) -> None:
    with TrackerClient(html_site, retries=0) as client, pytest.raises(TrackerError) as err:
        client.instances()
    assert f"{html_site} is not a runlink tracker's API root" in str(err.value)


def test_nothing_listening_is_not_reachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with TrackerClient(url, retries=1) as client, pytest.raises(TrackerError) as err:
        client.instances()
    assert err.value.status is None and f"not reachable at {url}" in str(err.value)
