"""Airflow instances: registry (admin creates), syncer config and sync state (watermark + health).

Credentials never come back in clear: the public view says "set"/"not set"; `GET .../syncer-config` gives an
admin caller the reference or the still-encrypted secret for a monitor that shares the tracker's key file.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from runlink.context import ContextError
from runlink.context import stored_instant as instant
from runlink.tracker import airflow_instances as registry
from runlink.tracker import keyset, relink
from runlink.tracker.auth import bearer, require, token_scope
from runlink.tracker.routes import JSONBody

router = APIRouter(prefix="/api/v1/airflow-instances", default_response_class=JSONBody)


async def any_scope(request: Request) -> str | None:
    """Read, ingest or admin: a syncer holding an ingest token must read its instance and watermark."""
    if bearer(request) is None and request.app.state.settings.open_reads:
        return None
    return await token_scope(request)


async def ingest_or_admin(request: Request) -> str:
    scope = await any_scope(request)
    if scope not in ("ingest", "admin"):
        raise HTTPException(403, f"a {scope} token cannot do this (needs ingest or admin)")
    return scope


class InstanceIn(BaseModel):
    name: str
    url: str
    uid: str | None = None
    api_version: str = "auto"
    auth_kind: str = "password"
    username: str | None = None
    #: a literal password or API token: encrypted before storage, never returned
    secret: str | None = Field(default=None, repr=False)
    #: `env:VAR` or `airflow-conn:CONN_ID`, resolved by the syncer
    secret_ref: str | None = None


class SyncStateIn(BaseModel):
    watermark: str | None = None
    last_sync_at: str | None = None
    last_success_at: str | None = None
    lag_s: float | None = None
    last_error: str | None = None
    events_sent: int | None = None
    cycle: dict[str, Any] | None = None


class AliasIn(BaseModel):
    uid: str


def _invalid(exc: registry.InstanceError) -> HTTPException:
    status = 409 if isinstance(exc, registry.InstanceConflict) else 422
    return HTTPException(status, {"message": str(exc), "field": exc.field})


@router.post("", status_code=201, dependencies=[Depends(require("admin"))])
def create_instance(request: Request, body: InstanceIn) -> JSONBody:
    """Register an instance (admin). 409 when the name exists."""
    try:
        registry.validate_new(body.model_dump())
    except registry.InstanceError as exc:
        raise _invalid(exc) from None
    with request.app.state.db.write() as conn:
        if registry.get_row(conn, body.name) is not None:
            raise HTTPException(409, {"message": f"an instance named {body.name!r} exists", "field": "name"})
        try:
            view = registry.create(conn, request.app.state.settings.home, body.model_dump())
        except registry.InstanceError as exc:
            raise _invalid(exc) from None
    return JSONBody(view, status_code=201)


@router.get("", dependencies=[Depends(any_scope)])
def list_instances(request: Request, cursor: str | None = None,
                   limit: int = Query(keyset.MAX_LIMIT, ge=1, le=keyset.MAX_LIMIT)) -> JSONBody:
    """Registered Airflow instances by name, a keyset page: pass `next` (or `previous`) back as `cursor`."""
    try:
        with request.app.state.db.read() as conn:
            return JSONBody(registry.instances_page(conn, cursor, limit))
    except ValueError:
        raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"}) from None


def _row(request: Request, name: str) -> Any:
    with request.app.state.db.read() as conn:
        row = registry.get_row(conn, name)
    if row is None:
        raise HTTPException(404, f"no Airflow instance named {name!r}")
    return row


@router.get("/{name}", dependencies=[Depends(any_scope)])
def get_instance(request: Request, name: str) -> JSONBody:
    with request.app.state.db.read() as conn:
        view = registry.view(conn, name)
    if view is None:
        raise HTTPException(404, f"no Airflow instance named {name!r}")
    return JSONBody(view)


def _change_alias(request: Request, name: str, alias: str, added: bool) -> JSONBody:
    with request.app.state.db.write() as conn:
        try:
            uid = (registry.add_alias if added else registry.remove_alias)(conn, name, alias)
        except registry.InstanceError as exc:
            raise _invalid(exc) from None
        except LookupError:
            raise HTTPException(404, f"no Airflow instance named {name!r}") from None
        relinked = relink.relink_alias(conn, alias.strip(), uid, added)
        view = registry.view(conn, name)
    return JSONBody({**view, "dags_relinked": relinked})


@router.post("/{name}/aliases", dependencies=[Depends(require("admin"))])
def add_alias(request: Request, name: str, body: AliasIn) -> JSONBody:
    """Another uid of this instance (a migrated deployment, Databand's instance UUID): what is stored under it is
    relinked to the instance, and later events under it link there too. Idempotent."""
    return _change_alias(request, name, body.uid, added=True)


@router.delete("/{name}/aliases/{alias}", dependencies=[Depends(require("admin"))])
def remove_alias(request: Request, name: str, alias: str) -> JSONBody:
    """Forget an alias: contexts under it are relinked as their own instance's (DAG definitions folded into the
    instance stay with it)."""
    return _change_alias(request, name, alias, added=False)


@router.get("/{name}/syncer-config", dependencies=[Depends(require("admin"))])
def get_syncer_config(request: Request, name: str) -> JSONBody:
    """For a monitor: the reference, or the secret still sealed (decryptable only with the tracker's key)."""
    return JSONBody(registry.syncer_config(_row(request, name)))


@router.get("/{name}/sync-state", dependencies=[Depends(any_scope)])
def get_sync_state(request: Request, name: str) -> JSONBody:
    return JSONBody({"name": name, **registry.sync_view(_row(request, name)._mapping)})


@router.put("/{name}/sync-state", dependencies=[Depends(ingest_or_admin)])
def put_sync_state(request: Request, name: str, body: SyncStateIn) -> JSONBody:
    """A syncer reports a cycle: watermark (never moves back), times, lag, last error, events sent."""
    data = body.model_dump(exclude_unset=True)
    for key in ("watermark", "last_sync_at", "last_success_at"):
        if data.get(key) is not None:
            try:
                data[key] = instant(data[key])
            except ContextError:
                raise HTTPException(422, {"message": f"{key}: not an ISO-8601 instant", "field": key}) from None
    with request.app.state.db.write() as conn:
        view = registry.update_sync_state(conn, name, data)
    if view is None:
        raise HTTPException(404, f"no Airflow instance named {name!r}")
    return JSONBody({"name": name, **view})
