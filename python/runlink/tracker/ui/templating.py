"""The UI's Jinja environment (templates/ and static/ beside this module) and `render`, which every HTML answer
goes through: the page's security headers and its render time (`Server-Timing`) are set here once."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from runlink import __version__
from runlink.tracker.alerts import rules as alert_rules
from runlink.tracker.ui import fragments
from runlink.tracker.ui.formatting import (
    fmt_bytes,
    fmt_duration,
    fmt_num,
    fmt_ts,
    is_web_link,
    metric_label,
    metric_value,
    param_value,
    stage_label,
    state_class,
)

UI_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(dur=fmt_duration, bytes=fmt_bytes, num=fmt_num, ts=fmt_ts, stc=state_class,
                       urlq=lambda v: quote(str(v), safe=""), weblink=is_web_link, metric_label=metric_label,
                       param=param_value)
    env.globals.update(version=__version__, urlencode=urlencode, kinds=alert_rules.KINDS, math=math,
                       fragments=fragments,
                       metric_value=metric_value, stage_label=stage_label)
    return env


ENV = _env()


def _static_version() -> str:
    """The newest static file's mtime: part of the asset URLs, so a browser never keeps an old script."""
    try:
        return str(int(max(p.stat().st_mtime for p in STATIC_DIR.iterdir())))
    except (OSError, ValueError):
        return __version__


STATIC_VERSION = _static_version()


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template `name` with the visitor's session (if any) and `context`, as an HTML answer."""
    session = getattr(request.state, "ui_session", None)
    started = time.perf_counter()
    body = ENV.get_template(name).render(request=request, session=session, static_v=STATIC_VERSION,
                                         open_mode=request.app.state.settings.open_reads, **context)
    headers = {**SECURITY_HEADERS, "Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}"}
    return HTMLResponse(body, status_code=status, headers=headers)
