"""LAIN's response envelope and the exact responses around it (COMPAT 1.2, 1.3, 1.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from rest_compat.py2 import dumps

__all__ = [
    "DOCS_URL",
    "LAIN_HEADERS",
    "Abort",
    "Reply",
    "json_response",
    "preflight_response",
    "slash_redirect",
]

DOCS_URL = "/v1/docs/"  # where LAIN pointed every error that has no better place

# The console's middleware put CORS on every response; Django added the frame option.
LAIN_HEADERS = {"Access-Control-Allow-Origin": "*", "X-Frame-Options": "SAMEORIGIN"}

_PREFLIGHT_HEADERS = {
    "Content-Type": "text/plain",
    "Access-Control-Allow-Methods": "DELETE, GET, PATCH, POST, PUT",
    "Access-Control-Allow-Headers": "access-token, content-type",
    "Access-Control-Max-Age": "86400",
    "Access-Control-Allow-Origin": "*",
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


def slash_redirect(scheme: str, host: str, path: str, query: str) -> Response:
    """Django's APPEND_SLASH answer: 301 to the slashed URL, empty HTML body."""
    location = f"{scheme}://{host}{quote(path, safe='/')}/"
    if query:
        location += f"?{query}"
    return Response(
        b"",
        status_code=301,
        headers={"Location": location},
        media_type="text/html; charset=utf-8",
    )
