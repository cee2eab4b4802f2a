"""LAIN's response envelope and the exact responses around it (COMPAT 1.2, 1.3, 1.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from rest_compat.py2 import dumps

__all__ = [
    "DOCS_URL",
    "LAIN_HEADERS",
    "Abort",
    "Reply",
    "json_response",
    "origin",
    "permanent_redirect",
    "preflight_response",
    "slash_redirect",
]

DOCS_URL = "/v1/docs/"  # where LAIN pointed every error that has no better place

# The console's middleware put CORS on every response; Django added the frame option.
LAIN_HEADERS = {"Access-Control-Allow-Origin": "*", "X-Frame-Options": "SAMEORIGIN"}

# Django's clickjacking middleware framed the preflight answer as well.
_PREFLIGHT_HEADERS = {
    "Content-Type": "text/plain",
    "Access-Control-Allow-Methods": "DELETE, GET, PATCH, POST, PUT",
    "Access-Control-Allow-Headers": "access-token, content-type",
    "Access-Control-Max-Age": "86400",
    **LAIN_HEADERS,
}


@dataclass(frozen=True, slots=True)
class Reply:
    """One envelope: `{"<key>": obj, "msg": msg, "url": url}` with an HTTP status."""

    status: int
    key: str
    msg: str = ""
    url: str = DOCS_URL
    obj: Any = None

    def body(self) -> bytes:
        # Inserted as the console's render_json_response did; py2.dumps gives 2.7's order.
        return dumps({self.key: self.obj, "msg": self.msg, "url": self.url})


class Abort(Exception):
    """Ends a handler early with `reply`."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.msg)
        self.reply = reply


def json_response(reply: Reply) -> Response:
    # A 204 reaches clients without the body the console generated (COMPAT 3.4).
    body = b"" if reply.status == 204 else reply.body()
    return Response(body, status_code=reply.status, media_type="application/json")


def preflight_response() -> Response:
    """The answer to any OPTIONS request, before routing (COMPAT 1.3)."""
    return Response(b"", status_code=200, headers=_PREFLIGHT_HEADERS)


def origin(request: Request) -> str:
    """`<scheme>://<host>` as the client asked, for the absolute Locations Django sent."""
    host = request.headers.get("host") or _server(request.scope)
    return f"{request.url.scheme}://{host}"


def permanent_redirect(location: str) -> Response:
    """Django's 301: the Location, an empty HTML body."""
    return Response(
        b"",
        status_code=301,
        headers={"Location": location},
        media_type="text/html; charset=utf-8",
    )


def slash_redirect(request: Request) -> Response:
    """Django's APPEND_SLASH answer: 301 to the slashed URL."""
    location = f"{origin(request)}{quote(request.url.path, safe='/')}/"
    if request.url.query:
        location += f"?{request.url.query}"
    return permanent_redirect(location)


def _server(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"{host}:{port}" if port not in (80, None) else str(host)
