"""The shared vectors pin context normalization and ids; the JVM listener's JUnit tests read the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runlink import ids
from runlink.context import ContextError, normalize

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CONTEXT = json.loads((VECTORS / "context_normalization.json").read_text("utf-8"))
IDS = json.loads((VECTORS / "ids.json").read_text("utf-8"))


@pytest.mark.parametrize("case", CONTEXT["cases"], ids=[c["name"] for c in CONTEXT["cases"]])
def test_context_normalization(case: dict) -> None:
    normalized = normalize(case["raw"])
    assert normalized.to_dict() == case["normalized"]
    assert normalized.key() == case["key"]
    assert ids.context_id(normalized) == case["context_id"]


@pytest.mark.parametrize("case", CONTEXT["errors"], ids=[c["name"] for c in CONTEXT["errors"]])
def test_context_errors(case: dict) -> None:
    with pytest.raises(ContextError):
        normalize(case["raw"])


def test_namespace() -> None:
    assert str(ids.NAMESPACE) == IDS["namespace"]


@pytest.mark.parametrize("case", IDS["spark_app_id"], ids=lambda c: c["app_id"])
def test_spark_app_id(case: dict) -> None:
    assert ids.spark_app_id(case["app_id"], case["attempt_id"]) == case["id"]


@pytest.mark.parametrize("case", IDS["event_id"], ids=lambda c: c["kind"])
def test_event_id(case: dict) -> None:
    assert ids.event_id(case["source_id"], case["kind"], case["discriminator"]) == case["id"]


def test_same_instant_in_every_spelling_gives_one_context_id() -> None:
    spellings = [
        "2026-11-21T00:00:00+00:00",
        "2026-11-21T01:00:00+01:00",
        "2026-11-20T19:00:00-05:00",
        "20261121T000000",
        "2026-11-21 00:00:00",
        "2026-11-21T00:00:00.000000Z",
    ]
    contexts = {ids.context_id(normalize({"dag_id": "d", "execution_date": s})) for s in spellings}
    assert len(contexts) == 1
