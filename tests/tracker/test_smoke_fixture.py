"""The shared `tracker` fixture starts a real server on each backend."""


def test_healthz(tracker):
    body = tracker.get_json("/healthz")
    assert body["status"] == "ok"
    assert body["db"] == tracker.backend
    assert (tracker.home / "token").stat().st_mode & 0o777 == 0o600
