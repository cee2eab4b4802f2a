"""Slow clients: a connection must finish each request's headers within a deadline.

uvicorn arms no timer while a connection sends its first request's headers (its
`timeout_keep_alive` runs only after a response), so a client that trickles a header byte
now and then holds its connection, and a slot of `limit_concurrency`, for ever. The
protocol below closes a connection that has not completed a request's headers within
`header_timeout` seconds of connecting or of its previous response, while a request whose
headers arrived may take as long as it needs. Behind a reverse proxy, set the proxy's own
header timeout too (README, "Slow clients").
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["with_header_timeout"]


def with_header_timeout(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP protocol (httptools, else h11) with a deadline for headers."""
    base: Any = AutoHTTPProtocol

    class HeaderTimeoutProtocol(base):  # type: ignore[misc]  # httptools or h11: chosen at run time
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            if not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._headers_overdue)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_overdue(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # closed already, or a websocket now (another protocol's business)
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()  # no request in progress: its headers never came

    return HeaderTimeoutProtocol
