"""What the console did around its routes: CORS preflight for any path, JSON for the errors
of paths no route takes (COMPAT 1.1, 1.3)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from rest_compat import errors
from rest_compat.envelope import LAIN_HEADERS, json_response, preflight_response

__all__ = ["PreflightMiddleware", "http_error"]


class PreflightMiddleware:
    """Answers every OPTIONS request before routing, as the console's CORS middleware did.

    GraphQL requests are GET and POST, so they pass through; browsers get the preflight
    answer they need to POST to /graphql from another origin as well.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await preflight_response()(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405 for paths outside the REST mounts, in LAIN's envelope."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        reply = errors.method_not_allowed("app", request.method)
    else:
        reply = errors.unknown_path(request.url.path)
    response = json_response(reply)
    response.headers.update(LAIN_HEADERS)
    return response
