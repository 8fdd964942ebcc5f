"""Alert tests: real tracker (tests/conftest.py), real webhook/SMTP receivers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.receivers import WebhookReceiver


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
