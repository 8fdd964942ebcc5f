"""A web UI page's HTML over plain HTTP (no browser), as a person signed in with the tracker's admin token sees it."""

from __future__ import annotations

import re
from typing import Any

import requests

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def ui_page(tracker: Any, path: str) -> str:
    """Log in with the token through the login form (its CSRF field), then GET `path`; assert it answered 200."""
    session = requests.Session()
    csrf = CSRF.search(session.get(tracker.url + "/ui/login", timeout=30).text)
    assert csrf is not None
    session.post(tracker.url + "/ui/login", data={"token": tracker.token, "csrf": csrf.group(1), "next": path},
                 timeout=30)
    page = session.get(tracker.url + path, timeout=30)
    assert page.status_code == 200, page.text[:500]
    return page.text
