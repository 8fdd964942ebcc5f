"""Keep-alive connections follow the load across the worker processes of `runlink server --workers N`.

Each worker listens on its own SO_REUSEPORT socket (supervisor.py) and the kernel places a connection on a worker
by its address hash, once. Agents and load balancers keep their connections open, so with few busy connections the
dice can leave 6 or 7 of 8 on one worker: one core saturated while the other idles (3 rounds of 10 in the ingest
benchmark, at 55-65% of the others' throughput). So every worker counts its requests in flight in shared memory,
and a worker carrying `MARGIN` more than the least loaded one answers with `Connection: close`: the client's next
request opens a new connection, which the kernel places anew. Between balanced workers nothing is closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, MutableSequence
from typing import Any

#: in-flight requests this worker must carry beyond the least loaded before it hands a connection back
MARGIN = 2

Message = MutableMapping[str, Any]
ASGIApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]


class Loads:
    """Requests in flight per worker: one shared int each (`multiprocessing.RawArray("i", workers)`), written only
    by its own worker's event loop and read by the others without a lock (a stale read only moves a close by one
    request)."""

    def __init__(self, counts: MutableSequence[int], index: int) -> None:
        self.counts = counts
        self.index = index

    def overloaded(self) -> bool:
        mine = self.counts[self.index]
        least = min((n for i, n in enumerate(self.counts) if i != self.index), default=mine)
        return mine - least >= MARGIN


class RebalanceMiddleware:
    """ASGI middleware of a worker: counts its HTTP requests in flight (until the response is sent) and, when the
    worker is overloaded as a response starts, asks the client to reconnect."""

    def __init__(self, app: ASGIApp, loads: Loads) -> None:
        self.app = app
        self.loads = loads

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counts, index = self.loads.counts, self.loads.index

        async def send_closing_when_overloaded(message: Message) -> None:
            if message["type"] == "http.response.start" and self.loads.overloaded():
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        counts[index] += 1
        try:
            await self.app(scope, receive, send_closing_when_overloaded)
        finally:
            counts[index] -= 1
