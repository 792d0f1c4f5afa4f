"""The HTTP side of ``python -m web``'s uvicorn: a connection must send a whole request head
within ``handshake_timeout`` seconds and in at most ``max_head_bytes``, or it is closed (with 431
for a head too large). Without it, a connection that never sends a byte, or sends a 100 KB URL,
holds a descriptor forever."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["guarded_http"]

TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 25\r\n\r\n"
    b"Request head is too large"
)


def guarded_http(handshake_timeout: float, max_head_bytes: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline and a size limit on every request head."""

    class GuardedHttp(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _tail = b""  # the end of the bytes seen so far, for a head's end split across reads

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._start_head()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is not None:
                # Only the head counts: a body sent in the same read (curl does) is not head.
                seen = self._tail + data
                end = seen.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
                self._tail = seen[-3:]
                if self._head_bytes > max_head_bytes:
                    self._stop_head()
                    self.transport.write(TOO_LARGE)
                    self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._stop_head()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._start_head()  # the next request on this connection: the same rules

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head()
            super().connection_lost(exc)

        def _start_head(self) -> None:
            self._head_bytes, self._tail = 0, b""
            self._head_timer = self.loop.call_later(handshake_timeout, self._too_slow)

        def _stop_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _too_slow(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttp
