"""Registered Airflow instances: where each one is, how to log in, and the health of its syncer.

Credentials are secrets. A literal secret is stored encrypted (`runlink.sealing`: Fernet, key in
`$RUNLINK_HOME/secret.key`, mode 0600, made on first use); a reference (`env:VAR`, `airflow-conn:ID`) is stored
as is and resolved by the syncer in its own process. Nothing here returns a secret in clear: the public view says
"set"/"not set", and the sealed (still encrypted) form goes only to admin callers, for a monitor that holds the
same key file.

The watermark (the `updated_at` instant up to which the syncer has delivered everything) lives here, so a
monitor can restart anywhere and continue where the last one stopped.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Connection, Float, Index, Integer, String, Table, Text, select

from runlink.instants import format_instant
from runlink.sealing import seal
from runlink.tracker import keyset
from runlink.tracker.models import INSTANT, metadata

API_VERSIONS = ("v1", "v2", "auto")
AUTH_KINDS = ("password", "token", "none")
REFERENCE = re.compile(r"^(env|airflow-conn):[A-Za-z0-9_.\-]+$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")

airflow_instances = Table(
    "airflow_instances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("uid", String(250), nullable=False),
    Column("url", Text, nullable=False),
    Column("api_version", String(8), nullable=False),
    Column("auth_kind", String(16), nullable=False),
    Column("username", String(250)),
    #: Fernet token of the secret (password or API token), or None
    Column("secret_enc", Text),
    #: `env:VAR` / `airflow-conn:ID`: resolved by the syncer, never by the tracker
    Column("secret_ref", String(300)),
    Column("created_at", String(INSTANT), nullable=False),
    Column("watermark", String(INSTANT)),
    Column("last_sync_at", String(INSTANT)),
    Column("last_success_at", String(INSTANT)),
    Column("lag_s", Float),
    Column("last_error", Text),
    Column("events_sent", BigInteger, nullable=False, default=0),
    Column("last_cycle", Text),
    Index("ix_airflow_instances_uid", "uid"),
)

#: another uid under which an instance's events arrive (a migrated deployment, Databand's instance UUID, a uid
#: registered before the instance reported its own); linking reads it as the instance's uid
instance_aliases = Table(
    "instance_aliases",
    metadata,
    Column("alias", String(250), primary_key=True),
    Column("uid", String(250), nullable=False),
    Column("created_at", String(INSTANT), nullable=False),
    Index("ix_instance_aliases_uid", "uid"),
)


class InstanceError(ValueError):
    """Bad input for an instance (-> 422), with the field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _now() -> str:
    return format_instant(datetime.now(timezone.utc))


# ------------------------------------------------------------------ rows <-> API

PUBLIC = ("name", "uid", "url", "api_version", "auth_kind", "username", "created_at")
SYNC_STATE = ("watermark", "last_sync_at", "last_success_at", "lag_s", "last_error", "events_sent")


def public_view(row: Any, aliases: list[str] | None = None) -> dict[str, Any]:
    """What any reader may see: no secret, only whether one is set (and the reference's kind)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    out = {k: m[k] for k in PUBLIC}
    out["aliases"] = sorted(aliases or [])
    if m["secret_ref"]:
        out["credentials"] = "reference"
        out["credentials_ref_kind"] = m["secret_ref"].split(":", 1)[0]
    else:
        out["credentials"] = "set" if m["secret_enc"] else "not set"
    out["sync_state"] = sync_view(m)
    return out


def sync_view(m: Any) -> dict[str, Any]:
    out = {k: m[k] for k in SYNC_STATE}
    out["last_cycle"] = orjson.loads(m["last_cycle"]) if m["last_cycle"] else None
    return out


class InstanceConflict(InstanceError):
    """The request contradicts what is stored (-> 409)."""


def validate_new(body: dict[str, Any]) -> None:
    name = body.get("name") or ""
    if not NAME.match(name):
        raise InstanceError("name: letters, digits, _ . - (at most 100)", "name")
    url = body.get("url") or ""
    if not url.startswith(("http://", "https://")):
        raise InstanceError("url: an http(s) URL of the Airflow web server / API server", "url")
    if body.get("api_version", "auto") not in API_VERSIONS:
        raise InstanceError(f"api_version: one of {', '.join(API_VERSIONS)}", "api_version")
    kind = body.get("auth_kind", "password")
    if kind not in AUTH_KINDS:
        raise InstanceError(f"auth_kind: one of {', '.join(AUTH_KINDS)}", "auth_kind")
    if body.get("secret") and body.get("secret_ref"):
        raise InstanceError("give either a secret or a reference, not both", "secret")
    ref = body.get("secret_ref")
    if ref and not REFERENCE.match(ref):
        raise InstanceError("secret_ref: env:VAR or airflow-conn:CONN_ID", "secret_ref")
    if kind == "password" and not body.get("username") and not (ref or "").startswith("airflow-conn:"):
        raise InstanceError("username: required with password auth", "username")


def create(conn: Connection, home: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Insert a new instance (name unique); a literal secret is encrypted before it touches the database."""
    validate_new(body)
    exists = conn.execute(select(airflow_instances.c.id).where(airflow_instances.c.name == body["name"])).first()
    if exists is not None:
        raise InstanceError(f"an instance named {body['name']!r} exists", "name")
    uid = body.get("uid") or body["name"]
    owner = _alias_owner(conn, uid)
    if owner is not None:
        raise InstanceConflict(f"uid {uid!r} is an alias of the instance uid {owner!r}", "uid")
    secret = body.get("secret")
    row = {
        "name": body["name"],
        "uid": uid,
        "url": body["url"].rstrip("/"),
        "api_version": body.get("api_version", "auto"),
        "auth_kind": body.get("auth_kind", "password"),
        "username": body.get("username"),
        "secret_enc": seal(home, secret) if secret else None,
        "secret_ref": body.get("secret_ref"),
        "created_at": _now(),
        "events_sent": 0,
    }
    conn.execute(airflow_instances.insert().values(**row))
    return view(conn, body["name"])


def view(conn: Connection, name: str) -> dict[str, Any] | None:
    """The public view of the instance `name`, with its aliases, or None."""
    row = get_row(conn, name)
    return None if row is None else public_view(row, aliases_of(conn, row.uid))


# ------------------------------------------------------------------ aliases

def aliases_of(conn: Connection, uid: str) -> list[str]:
    return [r[0] for r in conn.execute(select(instance_aliases.c.alias).where(instance_aliases.c.uid == uid))]


def _alias_owner(conn: Connection, alias: str) -> str | None:
    return conn.execute(select(instance_aliases.c.uid).where(instance_aliases.c.alias == alias)).scalar()


def add_alias(conn: Connection, name: str, alias: str) -> str:
    """Record `alias` as another uid of the instance `name`; returns the instance's uid. Adding the same alias
    again changes nothing; an alias that names another instance, or another instance's alias, is refused."""
    alias = (alias or "").strip()
    if not alias or len(alias) > 250:
        raise InstanceError("uid: 1 to 250 characters", "uid")
    row = get_row(conn, name)
    if row is None:
        raise LookupError(name)
    if alias == row.uid:
        raise InstanceError(f"{alias!r} is the instance's own uid", "uid")
    other = conn.execute(select(airflow_instances.c.name).where(airflow_instances.c.uid == alias)).scalar()
    if other is not None:
        raise InstanceConflict(f"{alias!r} is the uid of the instance {other!r}", "uid")
    owner = _alias_owner(conn, alias)
    if owner is not None and owner != row.uid:
        raise InstanceConflict(f"{alias!r} is already an alias of the instance uid {owner!r}", "uid")
    if owner is None:
        conn.execute(instance_aliases.insert().values(alias=alias, uid=row.uid, created_at=_now()))
    return row.uid


def remove_alias(conn: Connection, name: str, alias: str) -> str:
    """Forget `alias` of the instance `name`; returns the instance's uid (LookupError: no such instance)."""
    row = get_row(conn, name)
    if row is None:
        raise LookupError(name)
    conn.execute(instance_aliases.delete().where(instance_aliases.c.alias == alias,
                                                  instance_aliases.c.uid == row.uid))
    return row.uid


def get_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(airflow_instances).where(airflow_instances.c.name == name)).first()


#: by name (unique)
INSTANCES_ORDER = (keyset.Order(airflow_instances.c.name, "name"),)


def instances_page(conn: Connection, cursor: str | None = None, limit: int = keyset.MAX_LIMIT) -> dict[str, Any]:
    """A keyset page of the registered instances by name (`next`/`previous`; a bad cursor raises ValueError)."""
    page = keyset.page(conn, select(airflow_instances), INSTANCES_ORDER, cursor, limit)
    uids = sorted({row["uid"] for row in page["items"]})
    by_uid: dict[str, list[str]] = {}
    for alias, uid in conn.execute(select(instance_aliases.c.alias, instance_aliases.c.uid)
                                   .where(instance_aliases.c.uid.in_(uids))):
        by_uid.setdefault(uid, []).append(alias)
    return {**page, "items": [public_view(row, by_uid.get(row["uid"])) for row in page["items"]]}


def list_public(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(airflow_instances).order_by(airflow_instances.c.name)).fetchall()
    by_uid: dict[str, list[str]] = {}
    for alias, uid in conn.execute(select(instance_aliases.c.alias, instance_aliases.c.uid)):
        by_uid.setdefault(uid, []).append(alias)
    return [public_view(r, by_uid.get(r.uid)) for r in rows]


def syncer_config(row: Any) -> dict[str, Any]:
    """What a monitor needs to reach the instance: the public view plus the reference and the sealed secret
    (still encrypted). Only for admin callers."""
    m = row._mapping
    return {**public_view(row), "secret_ref": m["secret_ref"], "secret_sealed": m["secret_enc"]}


def update_sync_state(conn: Connection, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Record a sync cycle. The watermark never moves back (two monitors, or a late report, cannot rewind it);
    `events_sent` adds up."""
    row = get_row(conn, name)
    if row is None:
        return None
    m = row._mapping
    values: dict[str, Any] = {}
    watermark = body.get("watermark")
    if watermark is not None and (m["watermark"] is None or watermark > m["watermark"]):
        values["watermark"] = watermark
    for key in ("last_sync_at", "last_success_at", "lag_s"):
        if body.get(key) is not None:
            values[key] = body[key]
    if "last_error" in body:
        values["last_error"] = body["last_error"]
    if body.get("events_sent"):
        values["events_sent"] = (m["events_sent"] or 0) + int(body["events_sent"])
    if body.get("cycle") is not None:
        values["last_cycle"] = orjson.dumps(body["cycle"]).decode()
    if values:
        conn.execute(airflow_instances.update().where(airflow_instances.c.name == name).values(**values))
    return sync_view(get_row(conn, name)._mapping)
