"""A real tracker for the tests: `runlink.tracker.process.TrackerProcess` plus the calls tests make to it
(admin token by default). Reads of the API go through `runlink.api_client.TrackerClient`, the client the CLI and
the syncer use; posts and `get` return the raw answer, not raised, so tests can check error answers."""

from __future__ import annotations

import gzip as gzip_module
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from runlink.api_client import TrackerClient
from runlink.tracker.process import TrackerProcess

ROOT = Path(__file__).resolve().parents[2]


class Tracker(TrackerProcess):
    """A `runlink server` subprocess (`url`, `token`, `home`, `db_url`, `backend`, `process`, `log_path`)."""

    def __init__(self, home: Path | str, db_url: str | None = None, backend: str | None = None,
                 **options: Any) -> None:
        home = Path(home)
        db_url = db_url or f"sqlite:///{home / 'runlink.db'}"
        options.setdefault("cwd", ROOT)
        super().__init__(home, db_url, **options)
        self.backend = backend or ("postgresql" if db_url.startswith("postgresql") else "sqlite")

    def headers(self, token: str | None = "") -> dict[str, str]:
        token = self.token if token == "" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def post_events(
        self, events: Sequence[dict[str, Any]], *, token: str | None = "", gzip: bool = False, timeout: float = 60
    ) -> requests.Response:
        """POST a batch; returns the response (not raising), so tests can check error answers."""
        body = json.dumps({"events": list(events)}).encode()
        headers = {"Content-Type": "application/json", **self.headers(token)}
        if gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        return requests.post(self.url + "/api/v1/events", data=body, headers=headers, timeout=timeout)

    def post_raw(
        self, body: bytes, headers: dict[str, str] | None = None, *, token: str | None = ""
    ) -> requests.Response:
        """POST bytes as they are (bad JSON, bad gzip, oversized bodies)."""
        merged = {**self.headers(token), **(headers or {})}
        return requests.post(self.url + "/api/v1/events", data=body, headers=merged, timeout=60)

    def get(self, path: str, *, token: str | None = "", **params: Any) -> requests.Response:
        """The raw answer (any status), for tests of refusals and headers."""
        return requests.get(self.url + path, params=params, headers=self.headers(token), timeout=60)

    def client(self, token: str | None = "") -> TrackerClient:
        """The API client with the admin token (or `token`; None: none), asking once (no retries)."""
        return TrackerClient(self.url, self.token if token == "" else token, retries=0)

    def get_json(self, path: str, *, token: str | None = "", **params: Any) -> Any:
        """The decoded answer of a GET; a refusal raises `TrackerError` (its status and detail)."""
        with self.client(token) as api:
            return api.get(path, **params)

    def make_token(self, scope: str) -> str:
        response = requests.post(self.url + "/api/v1/tokens", json={"scope": scope}, headers=self.headers(),
                                 timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["token"]


def start_tracker(home: Path, db_url: str | None = None, backend: str | None = None, *, open_reads: bool = False,
                  extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None,
                  **options: Any) -> Tracker:
    """Start a tracker on a free port and wait (bounded) until /healthz answers."""
    return Tracker(home, db_url, backend, open_reads=open_reads, extra_args=extra_args, env=extra_env,
                   **options).start()
