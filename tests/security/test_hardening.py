"""The smaller hardening items against real trackers: `--open` Host checks (DNS rebinding) and loopback bind,
204 without a body (keep-alive safe), links only for http(s) URLs, control characters escaped in CLI output,
database and token files 0600."""

from __future__ import annotations

import http.client
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from runlink.tracker.process import TrackerProcess, TrackerStartError

ROOT = Path(__file__).resolve().parents[2]


def _event(kind: str, context: dict[str, Any], payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"v": 1, "id": f"{kind}-{uuid.uuid4().hex}", "type": kind, "time": "2026-01-01T00:00:00Z",
            "source": {"agent": "python"}, "context": context, "payload": payload, **extra}


def test_open_answers_only_local_host_names(tracker_factory: Any) -> None:
    tracker = tracker_factory(backend="sqlite", open_reads=True, extra_args=["--allowed-host", "Tracker.Example"])
    port = urlsplit(tracker.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost", f"tracker.example:{port}"):
        response = requests.get(tracker.url + "/api/v1/dag-runs", headers={"Host": host}, timeout=30)
        assert response.status_code == 200, (host, response.status_code)
    for host in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.evil.example:{port}", f"localhost.:{port}x"):
        for path in ("/api/v1/dag-runs", "/ui/dags", "/healthz"):
            response = requests.get(tracker.url + path, headers={"Host": host}, timeout=30, allow_redirects=False)
            assert response.status_code == 400, (host, path, response.status_code)
    # a rebinding page posting the UI's alert form is refused before any session or form handling
    response = requests.post(tracker.url + "/ui/alerts/rules", headers={"Host": "evil.example"},
                             data={"name": "x", "kind": "task_failed", "webhook_url": "https://evil.example/h"},
                             timeout=30, allow_redirects=False)
    assert response.status_code == 400


def test_open_refuses_a_non_loopback_bind(tmp_path: Path) -> None:
    server = TrackerProcess(tmp_path, host="0.0.0.0", port=1, open_reads=True, cwd=ROOT)
    with pytest.raises(TrackerStartError, match="exited with 2"):
        server.start()
    said = server.log()  # its stdout and stderr: one line, no traceback
    assert "loopback" in said and said.count("\n") == 1 and "Traceback" not in said


def test_delete_alert_rule_is_204_without_body_and_keeps_the_connection_usable(tracker: Any) -> None:
    url = urlsplit(tracker.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {**tracker.headers(), "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/alert-rules", body=json.dumps({"name": "r", "kind": "task_failed"}),
                 headers=headers)
    created = conn.getresponse()
    rule = json.loads(created.read())
    assert created.status == 201
    conn.request("DELETE", f"/api/v1/alert-rules/{rule['id']}", headers=headers)
    deleted = conn.getresponse()
    assert deleted.status == 204 and deleted.read() == b""
    assert deleted.getheader("content-length") in (None, "0") and deleted.getheader("content-type") is None
    conn.request("GET", "/api/v1/alert-rules", headers=headers)  # the same keep-alive connection
    after = conn.getresponse()
    assert after.status == 200 and all(r["id"] != rule["id"] for r in json.loads(after.read())["items"])
    conn.close()


def test_every_204_route_declares_no_body() -> None:
    """Any route that answers 204 uses a bare Response (a JSON body class would send `null`)."""
    import tempfile

    from fastapi.routing import APIRoute
    from starlette.responses import Response

    from runlink.tracker.app import create_app
    from runlink.tracker.settings import TrackerSettings

    app = create_app(TrackerSettings(home=Path(tempfile.mkdtemp(prefix="runlink-204-"))))
    no_content = [r for r in app.routes if isinstance(r, APIRoute) and r.status_code == 204]
    assert no_content, "no 204 route found"
    for route in no_content:
        assert route.response_class is Response or getattr(route.response_class, "value", None) is Response, \
            route.path


def test_links_only_for_http_urls(tracker: Any) -> None:
    dag_id = f"links_{uuid.uuid4().hex[:8]}"
    ctx = {"dag_id": dag_id, "dag_run_id": "r1", "task_id": "t", "try_number": "1"}
    events = [
        _event("task_attempt.start", ctx, {"state": "running", "log_url": "javascript:alert(document.cookie)"}),
        _event("spark_app.start", ctx, {"name": "a", "ui_url": " JavaScript:alert(1)"},
               spark={"app_id": f"app-js-{dag_id}"}),
        _event("spark_app.start", ctx, {"name": "b", "ui_url": "http://driver:4040/jobs/"},
               spark={"app_id": f"app-ok-{dag_id}"}),
    ]
    assert tracker.post_events(events).status_code == 202
    run = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"][0]
    tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
    attempt = tree["task_attempts"][0]
    session = requests.Session()
    page = session.get(tracker.url + "/ui/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    session.post(tracker.url + "/ui/login", data={"token": tracker.token, "csrf": csrf}, timeout=30)
    html = session.get(tracker.url + f"/ui/task-attempts/{attempt['id']}", timeout=30).text
    assert "javascript:alert(document.cookie)" in html and 'href="javascript' not in html.lower()
    apps = {a["app_id"]: a for a in attempt["spark_apps"]}
    bad = session.get(tracker.url + f"/ui/spark-apps/{apps[f'app-js-{dag_id}']['id']}", timeout=30).text
    assert "alert(1)" in bad and not re.search(r'href="\s*javascript', bad, re.IGNORECASE)
    good = session.get(tracker.url + f"/ui/spark-apps/{apps[f'app-ok-{dag_id}']['id']}", timeout=30).text
    assert 'href="http://driver:4040/jobs/"' in good


def test_cli_output_escapes_control_characters(tracker: Any) -> None:
    dag_id = f"esc_{uuid.uuid4().hex[:8]}\x1b[2J\x1b]0;pwned\x07"
    ctx = {"dag_id": dag_id, "dag_run_id": "run\x1b[31m1", "task_id": "t\r\x08", "try_number": "1"}
    events = [
        _event("task_attempt.end", ctx, {"state": "failed", "error": {"type": "E\x1b[5m",
                                                                       "message": "boom\x1b[1;31m red \u202e"}}),
        _event("metric", ctx, {"key": "rows\x1b[8m", "value": "v\x9b31m"}),
    ]
    assert tracker.post_events(events).status_code == 202
    env = {**os.environ, "RUNLINK_TOKEN": tracker.token, "PYTHONPATH": str(ROOT / "python")}
    outputs = []
    for args in (["runs", "list", "--url", tracker.url], ["runs", "show", dag_id, "--url", tracker.url],
                 ["runs", "show", dag_id + "-missing\x1b[31m", "--url", tracker.url]):
        result = subprocess.run([sys.executable, "-m", "runlink", *args], capture_output=True, text=True, env=env,
                                timeout=120)
        outputs.append(result.stdout + result.stderr)
    listing, tree, missing = outputs
    for text in outputs:
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text), repr(text)
    assert "\\x1b[2J" in listing and dag_id[:12] in listing
    assert "\\x1b[1;31m" in tree and "\\u202e" in tree and "rows\\x1b[8m" in tree and "\\r\\x08" in tree
    assert "\\x1b[31m" in missing


def test_database_and_token_files_are_owner_only(tracker_factory: Any) -> None:
    tracker = tracker_factory(backend="sqlite")
    ctx = {"dag_id": f"modes_{uuid.uuid4().hex[:8]}"}
    assert tracker.post_events([_event("metric", ctx, {"key": "k", "value": 1})]).status_code == 202
    db = Path(tracker.db_url[len("sqlite:///"):])
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), tracker.home / "token"]
    for path in files:
        assert path.exists(), path
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"


def test_wider_files_of_an_older_tracker_are_tightened(tracker_factory: Any, tmp_path_factory: Any) -> None:
    home = tmp_path_factory.mktemp("runlink-old-modes")
    db = home / "runlink.db"
    old_umask = os.umask(0o022)
    try:
        db.touch(mode=0o644)
    finally:
        os.umask(old_umask)
    tracker = tracker_factory(backend="sqlite", db_url=f"sqlite:///{db}")
    assert tracker.post_events([_event("metric", {"dag_id": "m"}, {"key": "k", "value": 1})]).status_code == 202
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
