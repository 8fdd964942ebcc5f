"""Token scopes on EVERY route: each (method, path) of app.routes has a declared expectation, and a real server is
asked with no token, an ingest, a read and an admin token (UI routes: with a session logged in by that token).

A new route without an entry in EXPECTED fails the test: whoever adds a route decides who may call it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

# who may call: public | ingest | read | admin | any (any valid token) | ingest_or_admin |
# ui_page (a UI session: read or admin) | ui_manage (a UI session of an admin, plus the form's CSRF token) |
# ui_session_form (any UI session, plus CSRF) | ui_admin_page (a page for UI sessions of an admin token only)
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "public", ("GET", "/docs"): "public", ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public", ("GET", "/healthz"): "public", ("GET", "/metrics"): "public",
    ("GET", "/livez"): "public", ("GET", "/readyz"): "public",
    ("POST", "/api/v1/events"): "ingest", ("POST", "/api/v1/lineage"): "ingest",
    ("GET", "/api/v1/lineage/pending"): "read", ("GET", "/api/v1/lineage/unlinked"): "read",
    ("GET", "/api/v1/dag-runs"): "read", ("GET", "/api/v1/dag-runs/{run_pk}"): "read",
    ("GET", "/api/v1/task-attempts/{attempt_pk}"): "read", ("GET", "/api/v1/spark-apps/{app_pk}"): "read",
    ("GET", "/api/v1/task-attempts/{attempt_pk}/diagnosis"): "read",
    ("GET", "/api/v1/task-attempts/{attempt_pk}/trends"): "read",
    ("GET", "/api/v1/dag-runs/{run_pk}/diagnosis"): "read",
    ("POST", "/api/v1/tokens"): "admin", ("GET", "/api/v1/tokens"): "admin",
    ("DELETE", "/api/v1/tokens/{name}"): "admin",
    ("POST", "/api/v1/airflow-instances"): "admin", ("GET", "/api/v1/airflow-instances"): "any",
    ("GET", "/api/v1/airflow-instances/{name}"): "any",
    ("GET", "/api/v1/airflow-instances/{name}/syncer-config"): "admin",
    ("GET", "/api/v1/airflow-instances/{name}/sync-state"): "any",
    ("PUT", "/api/v1/airflow-instances/{name}/sync-state"): "ingest_or_admin",
    ("POST", "/api/v1/airflow-instances/{name}/aliases"): "admin",
    ("DELETE", "/api/v1/airflow-instances/{name}/aliases/{alias}"): "admin",
    ("GET", "/api/v1/views/instances"): "read", ("GET", "/api/v1/views/dags"): "read",
    ("GET", "/api/v1/views/dags/{dag_id}"): "read", ("GET", "/api/v1/views/dag-runs/{pk}"): "read",
    ("GET", "/api/v1/views/task-attempts/{pk}"): "read", ("GET", "/api/v1/views/spark-apps/{pk}"): "read",
    ("GET", "/api/v1/views/spark-apps/{pk}/stages/{stage_id}/{attempt_id}"): "read",
    ("GET", "/api/v1/views/datasets"): "read", ("GET", "/api/v1/views/datasets/{pk}"): "read",
    ("GET", "/api/v1/views/alerts"): "read", ("GET", "/api/v1/views/instances/{name}"): "read",
    ("GET", "/api/v1/views/spark-apps"): "read", ("GET", "/api/v1/views/lineage"): "read",
    ("GET", "/api/v1/alert-rules/kinds"): "read", ("GET", "/api/v1/alert-rules"): "read",
    ("POST", "/api/v1/alert-rules"): "admin", ("GET", "/api/v1/alert-rules/{pk}"): "read",
    ("PATCH", "/api/v1/alert-rules/{pk}"): "admin", ("DELETE", "/api/v1/alert-rules/{pk}"): "admin",
    ("GET", "/api/v1/alerts"): "read", ("POST", "/api/v1/alerts/{pk}/resolve"): "admin",
    ("POST", "/api/v1/alerts/evaluate"): "admin",
    ("GET", "/"): "public", ("GET", "/ui/"): "public", ("GET", "/ui"): "public", ("GET", "/ui/login"): "public",
    ("POST", "/ui/login"): "ui_login", ("POST", "/ui/logout"): "ui_session_form",
    ("GET", "/ui/attempt"): "ui_redirect",
    ("GET", "/ui/instances"): "ui_page", ("GET", "/ui/dags"): "ui_page", ("GET", "/ui/dags/{dag_id}"): "ui_page",
    ("GET", "/ui/dag-runs/{pk}"): "ui_page", ("GET", "/ui/task-attempts/{pk}"): "ui_page",
    ("GET", "/ui/spark-apps/{pk}"): "ui_page", ("GET", "/ui/spark-apps/{pk}/stages/{stage_id}/{attempt_id}"): "ui_page",
    ("GET", "/ui/datasets"): "ui_page", ("GET", "/ui/datasets/{pk}"): "ui_page", ("GET", "/ui/alerts"): "ui_page",
    ("GET", "/ui/instances/{name}"): "ui_page", ("GET", "/ui/spark-apps"): "ui_page", ("GET", "/ui/lineage"): "ui_page",
    ("GET", "/ui/tokens"): "ui_admin_page", ("POST", "/ui/tokens/{name}/revoke"): "ui_manage",
    ("POST", "/ui/alerts/rules"): "ui_manage", ("POST", "/ui/alerts/rules/{pk}/toggle"): "ui_manage",
    ("POST", "/ui/alerts/rules/{pk}/delete"): "ui_manage", ("POST", "/ui/alerts/{pk}/resolve"): "ui_manage",
}
SCOPES = ("none", "ingest", "read", "admin")
API_ALLOWED = {"public": set(SCOPES), "ingest": {"ingest", "admin"}, "read": {"read", "admin"}, "admin": {"admin"},
               "any": {"ingest", "read", "admin"}, "ingest_or_admin": {"ingest", "admin"}}


def app_routes() -> list[tuple[str, str]]:
    """Every (method, path) the tracker app serves (built in-process only to enumerate them)."""
    import tempfile

    from runlink.tracker.app import create_app
    from runlink.tracker.settings import TrackerSettings

    home = Path(tempfile.mkdtemp(prefix="runlink-routes-"))
    app = create_app(TrackerSettings(home=home))
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def test_every_route_has_a_declared_expectation() -> None:
    routes = app_routes()
    missing = [r for r in routes if r not in EXPECTED]
    assert not missing, f"routes without a scope expectation in {__file__}: {missing}"
    stale = [r for r in EXPECTED if r not in routes]
    assert not stale, f"expectations for routes that no longer exist: {stale}"


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0", path)


def _ui_session(tracker: Any, token: str | None) -> requests.Session:
    """A browser-like session logged in with `token` (no login for None; an ingest token is refused)."""
    session = requests.Session()
    if token is None:
        return session
    page = session.get(tracker.url + "/ui/login", timeout=30)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    session.post(tracker.url + "/ui/login", data={"token": token, "csrf": nonce, "next": "/ui/dags"},
                 allow_redirects=False, timeout=30)
    return session


def _csrf(tracker: Any, session: requests.Session) -> str | None:
    page = session.get(tracker.url + "/ui/alerts", timeout=30, allow_redirects=False)
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def scoped(tracker_factory: Any) -> tuple[Any, dict[str, str | None]]:
    tracker = tracker_factory(backend="sqlite", extra_args=["--rate-limit", "0"])
    tokens: dict[str, str | None] = {"none": None, "admin": tracker.token}
    tokens["ingest"] = tracker.make_token("ingest")
    tokens["read"] = tracker.make_token("read")
    return tracker, tokens


def test_api_routes_enforce_scopes(scoped: tuple[Any, dict[str, str | None]]) -> None:
    tracker, tokens = scoped
    failures = []
    tried = 0
    for (method, path), rule in sorted(EXPECTED.items()):
        if rule not in API_ALLOWED:
            continue
        for scope in SCOPES:
            token = tokens[scope]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            response = requests.request(method, tracker.url + _fill(path), headers={
                **headers, "Content-Type": "application/json"}, data=body, timeout=60, allow_redirects=False)
            tried += 1
            status = response.status_code
            if scope in API_ALLOWED[rule]:
                ok = status not in (401, 403) and status < 500
            else:
                ok = status == (401 if token is None else 403)
            if not ok:
                failures.append(f"{method} {path} as {scope}: {status} {response.text[:120]}")
    assert not failures, "\n".join(failures)
    assert tried >= 4 * 30


def test_ui_routes_enforce_sessions_and_csrf(scoped: tuple[Any, dict[str, str | None]]) -> None:
    tracker, tokens = scoped
    sessions = {scope: _ui_session(tracker, tokens[scope]) for scope in SCOPES}
    failures = []
    for (method, path), rule in sorted(EXPECTED.items()):
        if not rule.startswith("ui_") or rule == "ui_login":
            continue
        url = tracker.url + _fill(path)
        for scope, session in sessions.items():
            logged_in = scope in ("read", "admin")
            if method == "GET":
                status = session.get(url, timeout=60, allow_redirects=False).status_code
                if not logged_in:
                    ok = status in (302, 303, 307)
                elif rule == "ui_admin_page" and scope != "admin":
                    ok = status == 403
                elif rule == "ui_redirect":  # to the attempt the query names, else 404
                    ok = status in (303, 404)
                else:
                    ok = status in (200, 404)
                if not ok:
                    failures.append(f"GET {path} as {scope}: {status}")
                continue
            # state-changing forms: without / with a wrong / with the right CSRF token
            for variant in ("missing", "wrong", "right"):
                data: dict[str, str] = {"name": "r", "kind": "task_failed"}
                token = _csrf(tracker, session) if logged_in else None
                if variant == "wrong":
                    data["csrf"] = "forged-" + "x" * 20
                elif variant == "right" and token:
                    data["csrf"] = token
                status = session.post(url, data=data, timeout=60, allow_redirects=False).status_code
                if not logged_in:
                    ok = status in (302, 303, 401, 403)  # no session: login or refused, never done
                elif variant != "right" or (rule == "ui_manage" and scope != "admin"):
                    ok = status == 403 or (path == "/ui/logout" and status == 403)
                else:
                    ok = status in (200, 303, 404, 422)
                if not ok:
                    failures.append(f"POST {path} as {scope} with {variant} CSRF: {status}")
            if path == "/ui/logout" and logged_in:
                sessions[scope] = _ui_session(tracker, tokens[scope])  # the right-CSRF logout ended it
    assert not failures, "\n".join(failures)


def test_login_form_is_csrf_protected_and_refuses_ingest_tokens(scoped: tuple[Any, dict[str, str | None]]) -> None:
    tracker, tokens = scoped
    for scope, expected in (("ingest", 401), ("read", 303), ("admin", 303)):
        session = requests.Session()
        session.get(tracker.url + "/ui/login", timeout=30)
        for forged in (None, "forged-" + "x" * 20):
            data = {"token": tokens[scope], **({"csrf": forged} if forged else {})}
            status = session.post(tracker.url + "/ui/login", data=data, allow_redirects=False, timeout=30).status_code
            assert status == 403, (scope, forged, status)
        page = session.get(tracker.url + "/ui/login", timeout=30)  # each refusal renders a fresh nonce
        nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        # a cross-site POST has no login cookie: the right nonce alone does not log in
        bare = requests.post(tracker.url + "/ui/login", data={"token": tokens[scope], "csrf": nonce},
                             allow_redirects=False, timeout=30)
        assert bare.status_code == 403
        status = session.post(tracker.url + "/ui/login", data={"token": tokens[scope], "csrf": nonce},
                              allow_redirects=False, timeout=30).status_code
        assert status == expected, (scope, status)
