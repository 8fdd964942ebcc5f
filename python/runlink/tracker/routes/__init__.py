"""HTTP routes, thin: parse the request, call ingest/queries, shape the answer."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class JSONBody(JSONResponse):
    """orjson-encoded JSON (the run tree is large: the standard encoder would dominate its latency). A
    JSONResponse, so the OpenAPI document gives routes their response models (not `type: string`)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
