"""UI sessions over plain HTTP against a real tracker: token login, cookie flags, CSRF synchronizer token on
every state-changing form, logout invalidation, `--open` mode, page data == JSON twin."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def login(url: str, token: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    csrf = CSRF.search(session.get(url + "/ui/login", timeout=30).text).group(1)
    response = session.post(url + "/ui/login", data={"token": token, "csrf": csrf, "next": "/ui/alerts"},
                            allow_redirects=False, timeout=30)
    return session, response


@pytest.fixture(scope="module")
def server(tracker_factory: Any) -> Any:
    return tracker_factory(backend="sqlite")


def test_login_sets_a_strict_httponly_signed_cookie(server: Any) -> None:
    session, response = login(server.url, server.token)
    assert response.status_code == 303 and response.headers["location"] == "/ui/alerts"
    cookie = next(c for c in response.headers.get("set-cookie", "").split(", runlink") if "runlink_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    value = session.cookies["runlink_session"]
    assert server.token not in value and "." in value
    page = session.get(server.url + "/ui/alerts", timeout=30)
    assert page.status_code == 200 and "New rule" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    # a tampered signature is no session
    tampered = requests.Session()
    tampered.cookies.set("runlink_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert tampered.get(server.url + "/ui/dags", allow_redirects=False, timeout=30).status_code == 303


def test_bad_logins(server: Any) -> None:
    assert login(server.url, "rl_wrong")[1].status_code == 401
    ingest = server.make_token("ingest")
    response = login(server.url, ingest)[1]
    assert response.status_code == 401 and "cannot read" in response.text
    # no login-CSRF nonce (a cross-site form post): refused
    response = requests.post(server.url + "/ui/login", data={"token": server.token, "csrf": "x"},
                             allow_redirects=False, timeout=30)
    assert response.status_code == 403
    # an open redirect is not followed
    session = requests.Session()
    csrf = CSRF.search(session.get(server.url + "/ui/login", timeout=30).text).group(1)
    response = session.post(server.url + "/ui/login", data={"token": server.token, "csrf": csrf,
                                                            "next": "//evil.example/x"}, allow_redirects=False,
                            timeout=30)
    assert response.headers["location"] == "/ui/dags"


def test_csrf_required_on_every_form(server: Any, unique: str) -> None:
    session, _ = login(server.url, server.token)
    form = {"name": f"r {unique}", "kind": "task_failed", "dag_id": f"csrf_{unique}"}
    for data in (form, {**form, "csrf": "wrong"}):
        response = session.post(server.url + "/ui/alerts/rules", data=data, allow_redirects=False, timeout=30)
        assert response.status_code == 403
    csrf = CSRF.search(session.get(server.url + "/ui/alerts", timeout=30).text).group(1)
    response = session.post(server.url + "/ui/alerts/rules", data={**form, "csrf": csrf}, allow_redirects=False,
                            timeout=30)
    assert response.status_code == 303
    rules = server.get_json("/api/v1/alert-rules")["items"]
    rule = next(r for r in rules if r["name"] == f"r {unique}")
    for action in ("toggle", "delete"):
        url = f"{server.url}/ui/alerts/rules/{rule['id']}/{action}"
        assert session.post(url, data={}, allow_redirects=False, timeout=30).status_code == 403
    assert session.post(f"{server.url}/ui/alerts/rules/{rule['id']}/toggle", data={"csrf": csrf},
                        allow_redirects=False, timeout=30).status_code == 303
    assert server.get_json(f"/api/v1/alert-rules/{rule['id']}")["enabled"] is False
    # a read token sees the rules but cannot change them
    reader, _ = login(server.url, server.make_token("read"))
    page = reader.get(server.url + "/ui/alerts", timeout=30).text
    assert "New rule" not in page
    read_csrf = CSRF.search(page).group(1)
    response = reader.post(server.url + "/ui/alerts/rules", data={**form, "csrf": read_csrf},
                           allow_redirects=False, timeout=30)
    assert response.status_code == 403


def test_logout_invalidates_the_session(server: Any) -> None:
    session, _ = login(server.url, server.token)
    cookie = session.cookies["runlink_session"]
    csrf = CSRF.search(session.get(server.url + "/ui/dags", timeout=30).text).group(1)
    assert session.post(server.url + "/ui/logout", data={"csrf": csrf}, allow_redirects=False,
                        timeout=30).status_code == 303
    replay = requests.Session()
    replay.cookies.set("runlink_session", cookie)
    response = replay.get(server.url + "/ui/dags", allow_redirects=False, timeout=30)
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login")


def test_revoked_or_expired_token_ends_its_sessions(server: Any, unique: str) -> None:
    """The session is tied to its token: revoking the token (API) or its expiry ends the session at once,
    and the cookie then gets the login page."""
    import time

    created = requests.post(server.url + "/api/v1/tokens", json={"scope": "read", "name": f"s-{unique}"},
                            headers=server.headers(), timeout=30).json()
    session, response = login(server.url, created["token"])
    assert response.status_code == 303
    assert session.get(server.url + "/ui/dags", allow_redirects=False, timeout=30).status_code == 200
    assert requests.delete(f"{server.url}/api/v1/tokens/s-{unique}", headers=server.headers(),
                           timeout=30).status_code == 200
    page = session.get(server.url + "/ui/dags", timeout=30)
    assert page.url.startswith(server.url + "/ui/login") and 'name="token"' in page.text

    short = requests.post(server.url + "/api/v1/tokens", json={"scope": "read", "expires": "3s"},
                          headers=server.headers(), timeout=30).json()
    session, response = login(server.url, short["token"])
    assert response.status_code == 303
    assert session.get(server.url + "/ui/dags", allow_redirects=False, timeout=30).status_code == 200
    deadline = time.monotonic() + 10
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = session.get(server.url + "/ui/dags", allow_redirects=False, timeout=30).status_code
        time.sleep(0.1)  # polling interval; the condition is the session ending with its token's expiry
    assert status == 303


def test_open_mode_needs_no_login(tracker_factory: Any) -> None:
    open_server = tracker_factory(backend="sqlite", open_reads=True)
    session = requests.Session()
    page = session.get(open_server.url + "/ui/alerts", timeout=30)
    assert page.status_code == 200 and "New rule" in page.text and "local (open)" in page.text
    assert "runlink_session" in session.cookies
    # the JSON twins are open for reading too, writes through the API still need a token
    assert requests.get(open_server.url + "/api/v1/views/dags", timeout=30).status_code == 200
    assert requests.post(open_server.url + "/api/v1/alert-rules", json={"name": "x", "kind": "task_failed"},
                         timeout=30).status_code == 401


def test_openapi_lists_the_views_and_alerts(server: Any) -> None:
    spec = requests.get(server.url + "/openapi.json", timeout=30).json()
    for path in ("/api/v1/views/dags", "/api/v1/views/dags/{dag_id}", "/api/v1/views/dag-runs/{pk}",
                 "/api/v1/views/task-attempts/{pk}", "/api/v1/views/spark-apps/{pk}", "/api/v1/views/datasets/{pk}",
                 "/api/v1/views/instances", "/api/v1/alert-rules", "/api/v1/alerts"):
        assert path in spec["paths"], path
    assert not any(p.startswith("/ui") for p in spec["paths"])
    assert requests.get(server.url + "/docs", timeout=30).status_code == 200
    assert requests.get(server.url + "/api/v1/views/dags", timeout=30).status_code == 401
