"""The schema is the one definition of the wire protocol: check what it accepts and how it rejects."""

from __future__ import annotations

import pytest

from runlink.protocol import EVENT_TYPES, ProtocolError, make_event, validate_batch, validate_event


def _stage(**payload: object) -> dict:
    base = {"stage_id": 1, "attempt_id": 0, "status": "succeeded", "metrics": {"input_bytes": 10}}
    return make_event("spark_stage.completed", {**base, **payload}, spark={"app_id": "local-1"})


def test_valid_batch_round_trips() -> None:
    events = [make_event("metric", {"key": "rows", "value": 3}, context={"dag_id": "d"}), _stage()]
    assert validate_batch({"events": events}) == events


def test_error_names_event_index_and_field() -> None:
    events = [_stage(), _stage(metrics={"input_bytes": "ten"})]
    with pytest.raises(ProtocolError) as info:
        validate_batch({"events": events})
    assert info.value.index == 1
    assert info.value.field == "payload.metrics.input_bytes"


def test_spark_events_need_the_app_ref() -> None:
    event = _stage()
    del event["spark"]
    with pytest.raises(ProtocolError) as info:
        validate_event(event, 0)
    assert info.value.field == "spark"


@pytest.mark.parametrize(
    "batch",
    [[], {"events": []}, {"events": [{}]}, {"events": [1]}, {"evts": []}, {"events": [], "x": 1}],
)
def test_malformed_batches(batch: object) -> None:
    with pytest.raises(ProtocolError):
        validate_batch(batch)


def test_unknown_type_and_version_rejected() -> None:
    event = make_event("metric", {"key": "k", "value": 1})
    with pytest.raises(ProtocolError):
        validate_event({**event, "type": "nope"})
    with pytest.raises(ProtocolError):
        validate_event({**event, "v": 2})


def test_every_type_has_a_payload_rule() -> None:
    from runlink.protocol.events import _payload_validators

    assert set(_payload_validators()) == set(EVENT_TYPES)
