"""`install(app)`: what the tracker's create_app calls to add the web UI (pages, forms, static files, HTML error
pages) and the alert worker the UI's and the API's rule changes wake. The JSON views and the alerts API are route
modules (routes/views.py, routes/alerts.py) that create_app mounts itself."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from runlink.tracker.ui import api_docs, forms, pages
from runlink.tracker.ui.templating import STATIC_DIR, render


def install(app: FastAPI) -> None:
    from runlink.tracker.alerts.worker import AlertWorker

    app.include_router(pages.router)
    app.include_router(forms.router)
    app.include_router(api_docs.router)
    app.mount("/ui/static", StaticFiles(directory=str(STATIC_DIR)), name="ui-static")

    worker = AlertWorker(app.state.db)
    app.state.alerts = worker
    hooks = list(getattr(app.state, "ingest_hooks", []))
    hooks.append(worker.after_ingest)
    app.state.ingest_hooks = hooks

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any):  # noqa: ANN202
        worker.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            worker.stop()

    app.router.lifespan_context = lifespan

    default_handler = app.exception_handlers.get(StarletteHTTPException)

    async def http_error(request: Request, exc: StarletteHTTPException):  # noqa: ANN202
        """UI paths get an HTML error page; the API keeps its JSON errors."""
        if request.url.path.startswith("/ui/") and exc.status_code in (403, 404, 422):
            detail = exc.detail if isinstance(exc.detail, str) else (exc.detail or {}).get("message", str(exc.detail))
            return render(request, "error.html", status=exc.status_code, code=exc.status_code, detail=detail)
        if default_handler is not None:
            return await default_handler(request, exc)
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)

    default_invalid = app.exception_handlers.get(RequestValidationError)

    async def invalid_request(request: Request, exc: RequestValidationError):  # noqa: ANN202
        """A UI path whose parts do not parse (`/stages/x/0`) names no page: the UI's 404 (a bad query value: its
        400), not FastAPI's raw 422 JSON."""
        if request.url.path.startswith("/ui/"):
            errors = exc.errors()
            where = ", ".join(str(e.get("loc", ["?"])[-1]) for e in errors[:3])
            if any(e.get("loc", [""])[0] == "path" for e in errors):
                return render(request, "error.html", status=404, code=404,
                              detail=f"No such page: {request.url.path} ({where} is not valid here).")
            return render(request, "error.html", status=400, code=400, detail=f"Not a valid value: {where}.")
        if default_invalid is not None:
            return await default_invalid(request, exc)
        from fastapi.exception_handlers import request_validation_exception_handler

        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, invalid_request)
