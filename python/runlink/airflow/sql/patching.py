"""Method patches that the `Undo` of the task puts back, and the target (engine, host) of a hook."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from runlink.airflow.injection.base import Undo
from runlink.airflow.sql.recorder import Target

MARK = "_runlink_sql"


def loaded(module: str) -> Any:
    """The module if this process imported it already, else None (never imports a provider)."""
    return sys.modules.get(module)


def patch_method(undo: Undo, klass: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Replace `klass.name` (its own definition) by `make(original)`, once; the undo restores it."""
    original = klass.__dict__.get(name)
    if original is None or getattr(original, MARK, False):
        return False
    wrapper = make(original)
    setattr(wrapper, MARK, True)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    undo.set_attr(klass, name, wrapper)
    return True


def patch_hook_methods(undo: Undo, module: str, class_name: str,
                       makers: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]) -> None:
    """Patch each method `makers` names on `module.class_name`, if this process imported `module` already."""
    found = loaded(module)
    if found is None:
        return
    klass = getattr(found, class_name)
    for name, make in makers.items():
        patch_method(undo, klass, name, make)


def classes_defining(base: type, name: str) -> list[type]:
    """`base` and every subclass loaded now that defines `name` itself (an override runs instead of the base)."""
    found, seen, todo = [], set(), [base]
    while todo:
        klass = todo.pop()
        if klass in seen:
            continue
        seen.add(klass)
        if name in klass.__dict__:
            found.append(klass)
        todo.extend(klass.__subclasses__())
    return found


def hook_target(hook: Any, engine: str | None = None) -> Target:
    """Engine and host of a hook's Airflow connection, looked up once per hook object (never the credentials)."""
    cached = hook.__dict__.get("_runlink_target") if hasattr(hook, "__dict__") else None
    if cached is not None:
        return cached
    conn = None
    try:
        conn = hook.__dict__.get("_connection") or _connection_of(hook)
    except Exception:  # noqa: BLE001 - no connection: the engine is still known from the hook class
        conn = None
    engine = engine or getattr(type(hook), "conn_type", None) or getattr(conn, "conn_type", None)
    host = getattr(conn, "host", None) if conn is not None else None
    port = getattr(conn, "port", None) if conn is not None else None
    database = getattr(conn, "schema", None) if conn is not None else None
    target = Target(str(engine) if engine else None,
                    f"{host}:{port}" if host and port else (str(host) if host else None),
                    str(database) if database else None)
    try:
        hook.__dict__["_runlink_target"] = target
    except Exception:  # noqa: BLE001
        pass
    return target


def _connection_of(hook: Any) -> Any:
    """The hook's Connection: its cached one (DbApiHook.connection), else one lookup by its conn id."""
    if "connection" in dir(type(hook)):
        return hook.connection
    name_attr = getattr(hook, "conn_name_attr", None)
    conn_id = getattr(hook, name_attr, None) if name_attr else None
    return hook.get_connection(conn_id) if conn_id else None
