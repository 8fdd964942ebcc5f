"""`install(app)`: what the tracker's create_app calls to add the UI, the views/alerts API and the alert worker."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from runlink.tracker.routes.ui import UI_DIR


def install(app: FastAPI) -> None:
    from runlink.tracker.alerts.worker import AlertWorker
    from runlink.tracker.routes import alerts as alerts_routes
    from runlink.tracker.routes import ui as ui_routes

    app.include_router(ui_routes.api_router)
    app.include_router(alerts_routes.router)
    app.include_router(ui_routes.html_router)
    app.mount("/ui/static", StaticFiles(directory=str(UI_DIR / "static")), name="ui-static")

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
            return ui_routes.render(request, "error.html", status=exc.status_code, code=exc.status_code,
                                    detail=detail)
        if default_handler is not None:
            return await default_handler(request, exc)
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)
