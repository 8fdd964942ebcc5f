"""The one secret masker: every string runlink stores or shows goes through it, on the agents and the tracker.

Agents mask what they capture (params, conf, env, metrics, errors, logs, dataset URIs) before it leaves the
process; the tracker masks every event again on ingest, so a producer that does not (an old agent, the JVM
listener, an OpenLineage client, a hand-written script) can never get a secret stored or shown. Masking is
deterministic, so a masked context still links like the unmasked one would have.

Two rules: a value whose *key* names a secret (password, token, secret, api key, credential, ...) is replaced by
`***`; inside any text, secret-looking spans are cut out (runlink tokens, bearer/basic credentials, AWS access
key ids, `password=...`-style assignments and query parameters, URL userinfo, JWTs, private key blocks).
Agent-side module: depends on the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

#: key names whose values are secrets wherever they appear (params, conf, env, query strings); Airflow's and
#: Spark's default lists merged. `auth` alone is too broad ("author"); short names are matched whole below.
_SECRET_WORDS = (
    r"passw(?:or)?d|passwd|secret|token|api[-_.]?key|apikey|credentials?|private[-_.]?key|access[-_.]?key|"
    r"authorization|auth[-_.]?header|auth[-_.]?token|session[-_.]?key|keytab|signature|connection[-_.]?string|"
    r"client[-_.]?secret|sas[-_.]?token"
)
SECRET_KEY = re.compile(rf"(?i)(?:{_SECRET_WORDS})")
#: short key names that are secrets only as a whole name (`pwd=`, `?sig=`), never as part of a word ("design")
_SHORT_SECRET_KEY = re.compile(r"(?i)^(?:.*[-_.])?(?:pwd|pw|sig|sas)$")

# Every repetition below is bounded and every pattern starts at a boundary (a lookbehind that fails inside a run
# of the same characters): log text is up to 1 MiB, and an unbounded `[a-z.]*` before a literal backtracks
# quadratically (20 KB of "a.a.a." took 109 s). tests/security/test_masking.py times hostile inputs.
_W = r"A-Za-z0-9_\-"  # url-safe token characters
_TOKEN_PATTERNS = (
    # runlink tokens: rl_ + 43 random url-safe characters; mixed case is required so that identifiers such as
    # a dag id `rl_daily_export_v2` (all lower case) are not taken for one
    re.compile(rf"(?<![{_W}])rl_(?=[{_W}]{{0,300}}[A-Z])(?=[{_W}]{{0,300}}[a-z])[{_W}]{{20,300}}"),
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AIDA|AROA|ANPA|AGPA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),  # AWS
    re.compile(rf"(?<![{_W}])AIza[{_W}]{{35}}(?![{_W}])"),  # Google API keys
    re.compile(r"(?<![A-Za-z0-9_])(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})"),
    re.compile(r"(?<![A-Za-z0-9_])xox[abposr]-[A-Za-z0-9\-]{10,255}"),  # Slack
    re.compile(rf"(?<![{_W}])eyJ[{_W}]{{6,4000}}\.eyJ[{_W}]{{6,8000}}\.[{_W}]{{0,4000}}"),  # JWTs
)
#: `Authorization: Bearer xyz`, `Basic xyz`, `token 0a1b...` (`token` only before a long value with a digit, so
#: "invalid token received" stays readable)
_AUTH_SCHEME = re.compile(r"(?i)(?<![A-Za-z0-9_])(bearer|basic)([ \t]{1,8})[A-Za-z0-9_\-.=+/~]{8,4000}"
                          r"|(?<![A-Za-z0-9_])(token)([ \t]{1,8})(?=[A-Za-z_\-.=+/~]{0,64}[0-9])"
                          r"[A-Za-z0-9_\-.=+/~]{16,4000}")
#: `password=x`, `"token": "x"`, `?X-Amz-Signature=x&sig=y`; the key starts at a boundary and is at most ~200
#: characters, a quoted value is at most 4000 (an unclosed quote falls back to the unquoted form)
_KEY_CHARS = r"A-Za-z0-9_.\-"
_ASSIGN = re.compile(
    rf"(?P<key>(?<![{_KEY_CHARS}])[{_KEY_CHARS}]{{0,100}}?(?:" + _SECRET_WORDS + rf")[{_KEY_CHARS}]{{0,100}}"
    r"|(?<![A-Za-z0-9])(?:pwd|pw|sig|sas)(?![A-Za-z0-9])"
    r"|(?<=[?&;])(?:key|code|pass))"
    r"(?P<sep>[\"']?[ \t]{0,8}[=:][ \t]{0,8})"
    r"(?P<value>\"[^\"\n]{0,4000}\"|'[^'\n]{0,4000}'|[^\s,;&'\"}\])<>]{1,4000})",
    re.IGNORECASE,
)
#: scheme://user:password@ and scheme://<long token>@ (schemes are short; userinfo has no space, / or @)
_SCHEME = r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]{0,30}://)"
_URL_USERINFO = re.compile(_SCHEME + r"([^/\s:@?#]{0,256}):([^\s@]{1,512})@")
_URL_TOKEN_USER = re.compile(_SCHEME + r"([A-Za-z0-9_\-.~]{20,512})@")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----.*?"
                          r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z)", re.DOTALL)
#: a cheap superset of every pattern above, matched on the lowered text: most strings (stage names, paths,
#: states) skip the real work (a loop of `in` is ~10x faster than one case-insensitive alternation)
_TRIGGERS = ("rl_", "bearer", "basic", "token", "pass", "pw", "secret", "api", "key", "credential", "sig", "sas",
             "auth", "://", "private", "eyj", "aiza", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat", "xox",
             "code", "akia", "asia", "aida", "aroa", "anpa", "agpa", "abia", "acca", "connection")
_MAX_DEPTH = 200


def is_secret_key(key: object) -> bool:
    """Does this key (a param, conf, env or query-parameter name) name a secret?"""
    return isinstance(key, str) and bool(SECRET_KEY.search(key) or _SHORT_SECRET_KEY.match(key))


def _assign(match: re.Match[str]) -> str:
    value = match.group("value")
    if value in (MASK, '"***"', "'***'") or not value.strip("\"'"):
        return match.group(0)
    quote = value[0] if value[0] in "\"'" else ""
    return match.group("key") + match.group("sep") + quote + MASK + quote


def mask_text(text: str) -> str:
    """`text` with secret-looking spans replaced by `***` (the rest kept, so errors and logs stay readable)."""
    if len(text) < 4:
        return text
    if len(text) <= _CACHED_CHARS:
        cached = _TEXTS.get(text)
        if cached is None:
            if len(_TEXTS) >= _CACHE_ENTRIES:
                _TEXTS.clear()
            cached = _TEXTS[text] = _mask(text)
        return cached
    return _mask(text)


#: short strings repeat (dag and task ids, hosts, states, stage names, conf and metric names): masked once each;
#: plain dicts (a lookup is ~4x cheaper than functools.lru_cache's), emptied when full
_CACHED_CHARS = 256
_CACHE_ENTRIES = 16384
_TEXTS: dict[str, str] = {}
_KEYS: dict[str, tuple[str, bool]] = {}


def _mask(text: str) -> str:
    lowered = text.lower()
    for trigger in _TRIGGERS:
        if trigger in lowered:
            break
    else:
        return text
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub("-----BEGIN PRIVATE KEY-----" + MASK, text)
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(lambda m: m.group(1) + (m.group(2) + ":" if m.group(2) else "") + MASK + "@", text)
        text = _URL_TOKEN_USER.sub(lambda m: m.group(1) + MASK + "@", text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(MASK, text)
    text = _AUTH_SCHEME.sub(lambda m: (m.group(1) or m.group(3)) + (m.group(2) or m.group(4)) + MASK, text)
    if "=" in text or ":" in text:
        text = _ASSIGN.sub(_assign, text)
    return text


def _key(key: str) -> tuple[str, bool]:
    """A mapping key masked as text, and whether it names a secret."""
    found = _KEYS.get(key)
    if found is None:
        if len(_KEYS) >= _CACHE_ENTRIES:
            _KEYS.clear()
        found = _KEYS[key] = (mask_text(key), is_secret_key(key))
    return found


def mask_value(value: Any, _depth: int = 0) -> Any:
    """A masked copy of a JSON-like value: secret-named keys' text values become `***` (numbers and flags are
    kept: `max_tokens=512` is no secret), all other text is `mask_text`ed, keys included (a key can carry a
    token too). Deeper than 200 levels is replaced whole (never kept unmasked)."""
    kind = type(value)
    if kind is str:
        return mask_text(value)
    if kind is not dict and kind is not list:
        if isinstance(value, str):
            return mask_text(str(value))
        if isinstance(value, Mapping):
            value, kind = dict(value), dict
        elif isinstance(value, (list, tuple)):
            value, kind = list(value), list
        else:
            return value
    if _depth > _MAX_DEPTH:
        return MASK
    if kind is list:
        return [mask_value(v, _depth + 1) if type(v) not in _SCALARS else v for v in value]
    out = {}
    keys = _KEYS
    for key, item in value.items():
        secret = False
        if type(key) is str:
            key, secret = keys.get(key) or _key(key)
        item_kind = type(item)
        if item_kind is str:
            out[key] = MASK if secret and item and item != MASK else (_TEXTS.get(item) or mask_text(item))
        elif item_kind in _SCALARS:
            out[key] = item
        else:
            out[key] = mask_value(item, _depth + 1)
    return out


_SCALARS = frozenset({int, float, bool, type(None)})


def mask_metric(key: str, value: Any) -> tuple[str, Any]:
    """A user metric: its key as text; a text value hidden whole when the key names a secret (numbers are kept:
    `tokens_processed=5` is a count, not a secret)."""
    masked_key = mask_text(key) if isinstance(key, str) else key
    if isinstance(value, str):
        value = MASK if value and is_secret_key(key) else mask_text(value)
    return masked_key, value


#: the parts of an event that carry producer text (`id`, `type`, `time`, `v` are identity or validated format)
_EVENT_PARTS = ("payload", "context", "source", "spark")


#: payload members the protocol closes to integers (`stage_metrics`: fixed names, integer values; anything else
#: is refused by validation, so never stored): the hottest event type skips walking them
_INTEGER_ONLY = {"spark_stage.completed": "metrics"}


def mask_event(event: dict[str, Any]) -> dict[str, Any]:
    """Mask one protocol event in place (every string of its payload, context, source and Spark ref)."""
    kind = event.get("type")
    for part in _EVENT_PARTS:
        value = event.get(part)
        if type(value) is not dict:
            continue
        if part == "payload":
            if kind == "metric" and "key" in value:
                value = dict(value)
                value["key"], value["value"] = mask_metric(value["key"], value.get("value"))
            skip = _INTEGER_ONLY.get(kind) if type(kind) is str else None
            kept = value.get(skip) if skip else None
            if type(kept) is dict:  # validation (right after masking, before storage) refuses other names/types
                masked = mask_value({k: v for k, v in value.items() if k != skip})
                masked[skip] = kept
                event[part] = masked
                continue
        event[part] = mask_value(value)
    return event


def mask_token(text: str, token: str | None) -> str:
    """`mask_text`, and also this exact token wherever it appears (a token of an unknown shape)."""
    if token and len(token) >= 4 and token in text:
        text = text.replace(token, MASK)
    return mask_text(text)
