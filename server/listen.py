"""The server's socket, bound before anything else so a busy port fails a start at once."""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from server.connections import with_header_timeout
from server.settings import Settings

__all__ = ["CannotListen", "bind", "serve", "uvicorn_options"]

log = logging.getLogger(__name__)


class CannotListen(Exception):
    """The address to serve on cannot be bound; the message names it and why."""


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port; uvicorn listens on it once the app has started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port "
            "with --port or LAIN_CONSOLE_PORT"
        ) from None
    return sock


class _Server(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # uvicorn says where it listens only for the sockets it binds itself.
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            log.info("serving on http://%s:%d", f"[{host}]" if ":" in host else host, port)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn runs the app: the same for `serve` and the tests that start a server.

    X-Forwarded-For is believed only from the proxies in `forwarded_allow_ips` (uvicorn's
    own default trusts 127.0.0.1, which would let any local process pick its address).
    """
    return {
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips) or None,
        "log_config": None,
        "timeout_graceful_shutdown": 10,
        "lifespan": "on",
        # Beyond this many open connections uvicorn answers requests with 503 until some
        # close; a connection must finish each request's headers in time (`connections`).
        "limit_concurrency": settings.max_connections,
        "http": with_header_timeout(settings.header_timeout),
    }


def serve(app: ASGIApp, sock: socket.socket, settings: Settings) -> None:
    """Run `app` on the bound socket until a signal stops it (blocking)."""
    config = uvicorn.Config(app, **uvicorn_options(settings))
    _Server(config).run(sockets=[sock])
