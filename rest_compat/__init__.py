"""`/api/v1` and `/v1`: the REST front door that LAIN console clients cannot tell apart.

`rest_routes()` are the routes to add to the app, `PreflightMiddleware` answers CORS
preflight for every path, and `EXCEPTION_HANDLERS` turn the app's own 404 and 405 into JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from rest_compat.middleware import PreflightMiddleware, http_error
from rest_compat.misc import root_redirect
from rest_compat.routes import ENDPOINTS
from rest_compat.routing import RestApp

__all__ = ["EXCEPTION_HANDLERS", "PreflightMiddleware", "rest_routes"]

EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Coroutine[Any, Any, Response]]] = {
    404: http_error,
    405: http_error,
}


def rest_routes() -> list[BaseRoute]:
    """LAIN served every route under both prefixes (COMPAT 1.1), and `/` went to the docs."""
    app = RestApp(ENDPOINTS)
    return [Mount("/api/v1", app=app), Mount("/v1", app=app), Route("/", root_redirect)]
