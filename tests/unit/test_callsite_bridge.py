"""The call-site wrappers' one py4j call (PythonBridge.setCallSite) and their fallback to two local properties."""

from __future__ import annotations

from typing import Any

import pytest

from runlink.spark import pyspark_listener


class FakeJsc:
    def __init__(self) -> None:
        self.props: dict[str, Any] = {}
        self.calls = 0

    def setLocalProperty(self, key: str, value: Any) -> None:  # noqa: N802 - the py4j method name
        self.calls += 1
        self.props[key] = value


class Bridge:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple] = []

    def setCallSite(self, jsc: FakeJsc, short: Any, long: Any) -> bool:  # noqa: N802
        if self.fail:
            raise RuntimeError("py4j: method setCallSite does not exist")
        self.calls.append((short, long))
        jsc.props.update({"callSite.short": short, "callSite.long": long})
        return True


@pytest.fixture(autouse=True)
def _restore_bridge():
    saved = pyspark_listener._bridge
    yield
    pyspark_listener._bridge = saved


def test_one_call_through_the_bridge() -> None:
    bridge, jsc = Bridge(), FakeJsc()
    pyspark_listener._bridge = bridge
    pyspark_listener._set_callsite(jsc, "collect at /jobs/etl.py:3", "/jobs/etl.py:3 in main")
    assert bridge.calls == [("collect at /jobs/etl.py:3", "/jobs/etl.py:3 in main")] and jsc.calls == 0
    assert jsc.props["callSite.short"] == "collect at /jobs/etl.py:3"


def test_without_the_bridge_two_local_properties() -> None:
    pyspark_listener._bridge = None
    jsc = FakeJsc()
    pyspark_listener._set_callsite(jsc, "count at /a.py:1", "/a.py:1 in f")
    pyspark_listener._set_callsite(jsc, None, None)
    assert jsc.calls == 4 and jsc.props == {"callSite.short": None, "callSite.long": None}


def test_a_bridge_without_the_method_falls_back_for_good() -> None:
    """An older jar on the classpath: the call site is still set, and the bridge is not tried again."""
    pyspark_listener._bridge = Bridge(fail=True)
    jsc = FakeJsc()
    pyspark_listener._set_callsite(jsc, "show at /b.py:9", "/b.py:9 in g")
    assert jsc.props == {"callSite.short": "show at /b.py:9", "callSite.long": "/b.py:9 in g"}
    assert pyspark_listener._bridge is None
