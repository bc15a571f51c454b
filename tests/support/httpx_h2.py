"""A mend for httpx's HTTP/2 client, so that tests see the server's faults and not its.

httpcore 1.0 (httpx's transport) waits for send window by taking the connection's read
lock and reading from the socket, without looking again, once it holds the lock, whether
another stream's read has meanwhile brought the WINDOW_UPDATE it waits for. When that
update was the last frame the server had to send (the server now waits for the rest of the
body), the read never returns and the request ends in ReadTimeout with its window open.
Reported upstream as "Concurrent HTTP/2 uploads deadlock in `_wait_for_outgoing_flow`"
(https://github.com/pydantic/httpx2/issues/1133, open). It shows most at the start of a
connection, when uploads have used the default 65,535-byte window before the server's
WINDOW_UPDATE arrives. The soak (tests/robustness/soak.py) hit it in about half its runs:
two streams stuck with 240 KiB of stream window and 960 KiB of connection window.

The mend: while a task waits for window, its read returns no events (and reads nothing) if
the window has opened by the time the task holds the lock.
"""

from __future__ import annotations

import contextvars
from typing import Any

from httpcore._async.http2 import AsyncHTTP2Connection

_waiting_for: contextvars.ContextVar[int | None] = contextvars.ContextVar("waiting_for", default=None)
_read_incoming_data = AsyncHTTP2Connection._read_incoming_data


async def _wait_for_outgoing_flow(self: Any, request: Any, stream_id: int) -> int:
    h2 = self._h2_state
    while True:
        flow = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size)
        if flow > 0:
            return int(flow)
        token = _waiting_for.set(stream_id)
        try:
            await self._receive_events(request)
        finally:
            _waiting_for.reset(token)


async def _read_unless_window_open(self: Any, request: Any) -> list[Any]:
    stream_id = _waiting_for.get()
    if stream_id is not None and self._h2_state.local_flow_control_window(stream_id) > 0:
        return []
    return await _read_incoming_data(self, request)


def mend_flow_wait() -> None:
    """Install the mend (idempotent; for the whole process)."""
    AsyncHTTP2Connection._wait_for_outgoing_flow = _wait_for_outgoing_flow  # type: ignore[method-assign]
    AsyncHTTP2Connection._read_incoming_data = _read_unless_window_open  # type: ignore[method-assign]
