"""create_app(settings) -> the FastAPI app: database migrated, admin token ensured, routes mounted."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from runlink import __version__
from runlink.protocol import load_schema
from runlink.tracker.auth import TokenCache, ensure_admin_token
from runlink.tracker.db import Database, upgrade
from runlink.tracker.routes import JSONBody, diagnosis, events, health, instances, lineage, runs, tokens
from runlink.tracker.settings import TrackerSettings
from runlink.tracker.table_statistics import StatisticsKeeper
from runlink.tracker.telemetry import Telemetry


def _rewrite_refs(node: Any) -> Any:
    """JSON Schema `#/definitions/x` -> OpenAPI `#/components/schemas/x`."""
    if isinstance(node, dict):
        return {
            k: ("#/components/schemas/" + v[len("#/definitions/"):] if k == "$ref" and isinstance(v, str)
                and v.startswith("#/definitions/") else _rewrite_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def protocol_components() -> dict[str, Any]:
    """The wire protocol's JSON Schema as OpenAPI components (EventBatch + every definition)."""
    schema = copy.deepcopy(load_schema())
    definitions = schema.pop("definitions")
    batch = {k: v for k, v in schema.items() if not k.startswith("$")}
    components = {name: _rewrite_refs(body) for name, body in definitions.items()}
    components["EventBatch"] = _rewrite_refs(batch)
    return components


SETTINGS_ENV = "RUNLINK_TRACKER_SETTINGS"


def prepare_database(settings: TrackerSettings) -> None:
    """Migrate and make sure the admin token exists (once, before any worker starts); database files 0600."""
    from runlink.tracker.security import restrict_database_files

    restrict_database_files(settings.database_url)
    db = Database(settings.database_url, settings.durability)
    try:
        upgrade(db.engine)
        with db.write() as conn:
            ensure_admin_token(conn, settings.token_path)
    finally:
        db.dispose()
    restrict_database_files(settings.database_url)


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings come from `RUNLINK_TRACKER_SETTINGS` (JSON)."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    raw["home"] = Path(raw["home"])
    return create_app(TrackerSettings(**raw), prepared=True)


def _install_guards(app: FastAPI, settings: TrackerSettings) -> None:
    """Per-token rate limits and body caps (security.py); the OpenLineage exporter as an ingest hook."""
    from runlink.tracker.openlineage.export import Exporter
    from runlink.tracker.security import LOCAL_HOSTS, GuardMiddleware, HostGuardMiddleware, TokenBuckets

    buckets = TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst) \
        if settings.rate_limit_per_s > 0 else None
    app.add_middleware(GuardMiddleware, buckets=buckets, api_cap=settings.max_api_body_bytes)
    if settings.open_reads or settings.allowed_hosts:
        allowed = frozenset(settings.allowed_hosts) | (LOCAL_HOSTS if settings.open_reads else frozenset())
        app.add_middleware(HostGuardMiddleware, allowed=allowed)  # outermost: checked before anything else
    exporter = Exporter.from_env(settings.openlineage_export)
    app.state.openlineage_exporter = exporter
    if exporter is not None:
        app.state.ingest_hooks = [*getattr(app.state, "ingest_hooks", []), exporter.after_ingest]


def tune_gc() -> None:
    """Once the app is loaded: move every object alive now (modules, FastAPI, SQLAlchemy, schemas) out of the
    collector's reach, and collect the young generation less often. A 500-event batch allocates ~50,000
    short-lived containers; with the defaults the cyclic GC walked the whole heap several times per batch
    (about 10 us of CPU per event)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _retention_schedule(db: Database, settings: TrackerSettings):  # noqa: ANN202 - imported lazily
    """The scheduled retention pass when `retention_days` is set (retention.py), started."""
    if not settings.retention_days:
        return None
    from runlink.tracker.retention import RetentionSchedule

    schedule = RetentionSchedule(db, settings.retention_days, settings.retention_dag_glob,
                                 settings.retention_interval_s)
    schedule.start()
    return schedule


def create_app(settings: TrackerSettings | None = None, *, prepared: bool = False) -> FastAPI:
    """The tracker app. `prepared=True` skips migrations and first-start token (a parent process did them)."""
    settings = settings or TrackerSettings()
    if not prepared:
        prepare_database(settings)
    db = Database(settings.database_url, settings.durability)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        tune_gc()
        schedule = _retention_schedule(db, settings)
        statistics = StatisticsKeeper(db)  # PostgreSQL without autovacuum: planner statistics kept as tables grow
        statistics.start()
        yield
        statistics.stop()
        if schedule is not None:
            schedule.stop()
        db.dispose()

    app = FastAPI(title="runlink tracker", version=__version__, default_response_class=JSONBody, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # ui/api_docs.py serves them from the tracker's own files
    app.state.settings = settings
    app.state.ingest_gate = asyncio.Semaphore(settings.ingest_slots) if settings.ingest_slots > 0 else None
    app.state.db = db
    app.state.tokens = TokenCache(db)
    app.state.telemetry = Telemetry()
    for module in (health, events, lineage, runs, diagnosis, tokens, instances):
        app.include_router(module.router)
    _install_guards(app, settings)
    lineage.install(app)  # waiting OpenLineage children retried when a batch brings their parent
    from runlink.tracker.routes import alerts, views  # the pages' JSON twins, the alerts API
    from runlink.tracker.ui.mount import install as install_ui  # web UI pages and forms, alert worker

    app.include_router(views.router)
    app.include_router(alerts.router)
    install_ui(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(protocol_components())
            spec["components"]["schemas"]["OpenLineageRunEvent"] = lineage.RUN_EVENT_SCHEMA
            from runlink.tracker.openapi_doc import document

            document(spec)  # a response schema for every route, and the error shape runlink answers with
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
