"""One masking module (runlink.masking) for every string stored or shown.

The walk: every event type of the protocol schema, every string field of it (payload, context, source, Spark
ref; params/conf/column stats as free objects), is given a planted secret (a runlink token, a password
assignment, an AWS key id, credentials in a dataset URI, key-like query parameters); the events are ingested by a
real tracker, and no read API response, no UI page (crawled from /ui/dags through every link) and nothing in the
database (every text column, and the audit copies of the batches, decompressed) contains any planted secret."""

from __future__ import annotations

import json
import re
import sqlite3
import string
import uuid
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from runlink.masking import MASK, is_secret_key, mask_event, mask_text, mask_value

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "python/runlink/protocol/schema/events-v1.json")
                    .read_text("utf-8"))
DEFS = SCHEMA["definitions"]
INSTANT = "2026-01-01T00:00:00Z"


# ------------------------------------------------------------------------------------------ unit: the patterns

@pytest.mark.parametrize(("text", "secret", "kept"), [
    ("s3a://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG@bucket/a.parquet", "wJalrXUtnFEMI", "@bucket/a.parquet"),
    ("s3a://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG@bucket/a.parquet", "AKIAIOSFODNN7EXAMPLE", "s3a://"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Signature=ab12cd&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F1&x=1",
     "ab12cd", "x=1"),
    ("https://h/p?sig=SIGVALUE&sv=2020&token=TOKVALUE&key=KEYVALUE", "SIGVALUE", "sv=2020"),
    ("https://h/p?sig=SIGVALUE&sv=2020&token=TOKVALUE&key=KEYVALUE", "TOKVALUE", "https://h/p?"),
    ("https://h/p?sig=SIGVALUE&sv=2020&token=TOKVALUE&key=KEYVALUE", "KEYVALUE", "sv=2020"),
    ("login failed: password=hunter2 for bob", "hunter2", "for bob"),
    ('{"api_key": "k-123 456", "user": "bob"}', "k-123 456", '"user": "bob"'),
    ("curl -H 'Authorization: Bearer abcdefghijklmnopqrstu' x", "abcdefghijklmnopqrstu", "curl"),
    ("git push with token ghx0123456789abcdefXYZ now", "ghx0123456789abcdefXYZ", "now"),
    ("--conf spark.runlink.token=rl_ABCDEFGHIJKLMNOPQRSTUVWX job.py", "ABCDEFGHIJKLMNOPQRSTUVWX", "job.py"),
    ("echo rl_Qx7_kP2mZ9-aB4cD8eF1gH5iJ3kL6mN0oP > token", "Qx7_kP2mZ9-aB4cD8eF1gH5iJ3kL6mN0oP", "> token"),
    ("postgresql://airflow:pgpass@db:5432/airflow", "pgpass", "airflow:***@db"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretbody\n-----END RSA PRIVATE KEY-----", "MIIEsecretbody", "BEGIN"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sgnature_part", "eyJzdWIiOiIxMjM0In0", "jwt"),
    ("spark.hadoop.fs.s3a.secret.key=SECRETKEYVALUE", "SECRETKEYVALUE", "spark.hadoop"),
])
def test_mask_text_cuts_the_secret_and_keeps_the_rest(text: str, secret: str, kept: str) -> None:
    masked = mask_text(text)
    assert secret not in masked and MASK in masked, masked
    assert kept in masked, masked


@pytest.mark.parametrize("text", ["collect at /opt/jobs/etl.py:42", "design=blue", "author: me", "state=running",
                                  "rl_test_python_client_rides_th0", "dag rl_daily_export_v2_for_finance",
                                  "invalid token received from the server",
                                  "http://host:8080/path", "count at NativeMethodAccessorImpl.java:0",
                                  "s3a://bucket/path/part-0000.parquet", "key_count=3"])
def test_ordinary_text_is_kept(text: str) -> None:
    assert mask_text(text) == text


def test_mask_value_by_key_name_and_in_keys() -> None:
    value = {"env": {"AWS_SECRET_ACCESS_KEY": "abc", "HOME": "/root", "max_tokens": 512, "DB_PASSWORD": ""},
             "rl_ABCDEFGHIJKLMNOPQRSTUVwx": 1, "cmds": ["run --password=x1y2", ("token: t0k3n",)], "ok": True}
    masked = mask_value(value)
    assert masked["env"] == {"AWS_SECRET_ACCESS_KEY": MASK, "HOME": "/root", "max_tokens": 512, "DB_PASSWORD": ""}
    assert MASK in masked and "rl_ABCDEFGHIJKLMNOPQRSTUVwx" not in masked
    assert masked["cmds"] == ["run --password=***", ["token: ***"]] and masked["ok"] is True
    assert is_secret_key("X-Amz-Signature") and is_secret_key("sig") and not is_secret_key("design")


def test_mask_event_metric_keeps_counts_and_hides_secret_values() -> None:
    secret = {"type": "metric", "payload": {"key": "db_password", "value": "hunter2"}}
    assert mask_event(secret)["payload"] == {"key": "db_password", "value": MASK}
    count = {"type": "metric", "payload": {"key": "tokens_processed", "value": 5}}
    assert mask_event(count)["payload"] == {"key": "tokens_processed", "value": 5}
    keyed = {"type": "metric", "payload": {"key": "rows rl_ABCDEFGHIJKLMNOPQRSTUVwxyz", "value": 1}}
    assert "rl_ABCDEF" not in mask_event(keyed)["payload"]["key"]
    from runlink.tracker.auth import new_token

    for _ in range(200):  # real tokens are always recognized
        assert mask_text(f"token {new_token()} end") == "token *** end"


@pytest.mark.parametrize("hostile", [
    "a." * 500_000 + "://", "a" * 1_000_000 + " token", "token" * 200_000, 'password="' * 100_000,
    "eyJaaaaaaa." * 90_000, "rl_" + "aB" * 500_000, "s3a://" + "u" * 500_000 + ":" + "p" * 500_000 + " @",
    "bearer" + " " * 1_000_000, "passwordpassword" * 60_000 + "=", "x:" * 500_000,
    "-----BEGIN PRIVATE KEY-----" * 30_000,
    "https://h/?" + "sig=1&" * 150_000,
], ids=lambda text: repr(text[:14]))
def test_hostile_text_is_masked_in_linear_time(hostile: str) -> None:
    """Log text is up to 1 MiB: no pattern may backtrack quadratically (the tracker masks on every ingest)."""
    import time

    started = time.process_time()
    mask_text(hostile)
    assert time.process_time() - started < 3.0


def test_deep_nesting_is_never_kept_unmasked() -> None:
    node: dict[str, Any] = {}
    root = node
    for _ in range(400):
        node["a"] = {}
        node = node["a"]
    node["password"] = "deep-secret"
    assert "deep-secret" not in json.dumps(mask_value(root))


# ------------------------------------------------------------------------------------------ the walk

class Planter:
    """Unique secrets, one set per string field, remembered so the test can look for each."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # secret core -> field path
        self.n = 0

    def _core(self, field: str, alphabet: str = string.ascii_letters + string.digits, size: int = 20) -> str:
        self.n += 1
        core = "".join(alphabet[(self.n * 7919 + i * 104729) % len(alphabet)] for i in range(size - 4))
        core = f"{self.n:04d}"[-4:].translate(str.maketrans("0123456789", "QRSTUVWXYZ")) + core
        self.secrets[core] = field
        return core

    def text(self, field: str, max_length: int | None) -> str:
        limit = max_length or 100_000
        token = "rl_" + self._core(field)
        if limit < 200:
            return token[:limit] if len(token) <= limit else token
        aws = "AKIA" + self._core(field, string.ascii_uppercase + string.digits, 16)
        password = self._core(field)
        userinfo = self._core(field)
        sig = self._core(field)
        tok = self._core(field)
        return (f"x {token} password={password} s3a://{aws}:{userinfo}@bucket/data "
                f"https://h/o?X-Amz-Signature={sig}&token={tok}")

    def free_object(self, field: str) -> dict[str, Any]:
        return {"password": self._core(field), "spark.runlink.token": "rl_" + self._core(field),
                "note": self.text(field + ".note", 4096), "nested": {"api_key": self._core(field)}}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = DEFS[node["$ref"].split("/")[-1]]
    return node


def _is_instant(name: str, node: dict[str, Any]) -> bool:
    return "ISO-8601" in (node.get("description") or "") or name.endswith(("_date", "_time"))


def build(node: dict[str, Any], path: str, planter: Planter, name: str = "") -> Any:
    """A value for `node` with every string planted (enums take their first value, instants a real instant)."""
    node = _resolve(node)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if _resolve(o).get("type") != "null"]
        return build(options[0], path, planter, name)
    if "enum" in node:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        props = node.get("properties")
        extra = node.get("additionalProperties")
        if not props and isinstance(extra, dict) and _resolve(extra).get("type") == "object":
            return {"col " + planter.text(path + "{}", 100): planter.free_object(path + "{}")}
        extra_kinds = _resolve(extra).get("type") if isinstance(extra, dict) else None
        if not props and "string" in (extra_kinds if isinstance(extra_kinds, list) else [extra_kinds]):
            return {k: v for k, v in planter.free_object(path).items() if isinstance(v, str)}  # a map of strings
        if not props:
            return planter.free_object(path)
        return {key: build(sub, f"{path}.{key}", planter, key) for key, sub in props.items()}
    if "array" in kinds:
        items = node.get("items") or {}
        return [build(items, path + "[]", planter, name)] if items else []
    if "string" in kinds:
        if _is_instant(name, node):
            return INSTANT
        return planter.text(path, node.get("maxLength"))
    if "integer" in kinds or "number" in kinds:
        return 1
    if "boolean" in kinds:
        return True
    return None


def payload_schema(event_type: str) -> dict[str, Any]:
    for rule in DEFS["event"]["allOf"]:
        if rule["if"]["properties"]["type"]["const"] == event_type:
            return rule["then"]["properties"]["payload"]
    raise AssertionError(event_type)


def planted_events(planter: Planter) -> list[dict[str, Any]]:
    context = {"dag_id": "walk " + planter.text("context.dag_id", 200)[:200],
               "dag_run_id": planter.text("context.dag_run_id", 250), "task_id": planter.text("context.task_id", 250),
               "try_number": "1", "uid": planter.text("context.uid", 250), "logical_date": INSTANT}
    spark = {"app_id": "app-" + planter.text("spark.app_id", 200)[:200],
             "attempt_id": planter.text("spark.attempt_id", 64)}
    events = []
    for index, event_type in enumerate(DEFS["event"]["properties"]["type"]["enum"]):
        payload = build(payload_schema(event_type), event_type, planter)
        if event_type == "metric":
            payload["value"] = planter.text("metric.value", 65536)
        event = {"v": 1, "id": f"walk-{index}-{uuid.uuid4().hex}", "type": event_type, "time": INSTANT,
                 "source": {"agent": planter.text("source.agent", 64), "version": planter.text("source.version", 64),
                            "host": planter.text("source.host", 255), "pid": 1},
                 "context": context, "payload": payload}
        if event_type.startswith(("spark_", "sql_query")):
            event["spark"] = spark
        events.append(event)
    # a second metric whose key names a secret, and one whose key carries a token
    events.append({"v": 1, "id": f"walk-m-{uuid.uuid4().hex}", "type": "metric", "time": INSTANT,
                   "source": {"agent": "python"}, "context": context,
                   "payload": {"key": "db_password", "value": planter._core("metric.secret_key_value")}})
    events.append({"v": 1, "id": f"walk-k-{uuid.uuid4().hex}", "type": "metric", "time": INSTANT,
                   "source": {"agent": "python"}, "context": context,
                   "payload": {"key": "rows " + planter.text("metric.key2", 100), "value": 1}})
    return events


def _db_texts(db_url: str) -> str:
    """Every text and blob of the SQLite database, the batches' zstd audit copies decompressed."""
    import zstandard

    path = db_url[len("sqlite:///"):]
    chunks = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        try:
                            chunks.append(zstandard.ZstdDecompressor().decompress(value).decode("utf-8", "replace"))
                        except zstandard.ZstdError:
                            chunks.append(value.decode("latin-1"))
                    elif isinstance(value, str):
                        chunks.append(value)
    return "\n".join(chunks)


def _crawl(tracker: Any) -> dict[str, str]:
    """Every UI page reachable from /ui/dags and the other top pages (admin session), with its JSON twin."""
    session = requests.Session()
    page = session.get(tracker.url + "/ui/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    session.post(tracker.url + "/ui/login", data={"token": tracker.token, "csrf": csrf, "next": "/ui/dags"},
                 timeout=30)
    seen: dict[str, str] = {}
    queue = deque(["/ui/dags", "/ui/instances", "/ui/datasets", "/ui/alerts", "/ui/tokens"])
    while queue and len(seen) < 400:
        path = queue.popleft()
        if path in seen:
            continue
        response = session.get(tracker.url + path, timeout=60)
        assert response.status_code in (200, 404), (path, response.status_code)
        seen[path] = response.text
        twin = "/api/v1/views/" + path[len("/ui/"):]
        if twin not in seen and not path.startswith("/ui/tokens"):
            answer = tracker.get(twin.split("#")[0])
            if answer.status_code == 200:
                seen[twin] = answer.text
        for href in re.findall(r'href="([^"]+)"', response.text):
            href = href.replace("&amp;", "&")
            target = urlsplit(urljoin(tracker.url + path, href))
            if target.netloc == urlsplit(tracker.url).netloc and target.path.startswith("/ui/") \
                    and not target.path.startswith("/ui/static"):
                queue.append(target.path + (("?" + target.query) if target.query else ""))
    return seen


def _api_reads(tracker: Any) -> dict[str, str]:
    """The read API: run list and trees, task attempts, Spark apps, instances, alerts, tokens."""
    out: dict[str, str] = {}

    def get(path: str, **params: Any) -> Any:
        response = tracker.get(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        out[path] = response.text
        return response.json()

    for run in get("/api/v1/dag-runs", limit=500)["items"]:
        tree = get(f"/api/v1/dag-runs/{run['id']}")
        for attempt in tree["task_attempts"]:
            get(f"/api/v1/task-attempts/{attempt['id']}")
            for app in attempt.get("spark_apps", []):
                get(f"/api/v1/spark-apps/{app['id']}")
        for app in tree.get("spark_apps", []):
            get(f"/api/v1/spark-apps/{app['id']}")
    for path in ("/api/v1/airflow-instances", "/api/v1/alerts", "/api/v1/alert-rules", "/api/v1/tokens"):
        get(path)
    return out


def test_every_string_field_of_every_event_type_is_masked(tracker_factory: Any) -> None:
    tracker = tracker_factory(backend="sqlite")
    planter = Planter()
    events = planted_events(planter)
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text[:2000]
    assert response.json()["accepted"] == len(events)
    shown = {**_api_reads(tracker), **_crawl(tracker)}
    assert any("/ui/task-attempts/" in p for p in shown) and any("/ui/spark-apps/" in p for p in shown), list(shown)
    stored = _db_texts(tracker.db_url)
    assert MASK in stored
    leaks = []
    for core, field in planter.secrets.items():
        for where, text in shown.items():
            if core in text:
                leaks.append(f"{field} shown by {where}")
        if core in stored:
            leaks.append(f"{field} stored")
    assert not leaks, "\n".join(sorted(set(leaks)))
    # fields reach the read side at all (the walk is not vacuous): the masked markers are shown
    tree_text = "".join(t for p, t in shown.items() if p.startswith("/api/v1/task-attempts/"))
    assert "password=***" in tree_text and "s3a://***:***@bucket/data" in tree_text
