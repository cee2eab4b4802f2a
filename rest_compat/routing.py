"""Matching LAIN's URLs and running a route in LAIN's order (COMPAT 1.1 and 1.6).

Every request goes: trailing-slash handling, then the route's own pre-method gate, then the
method (405), then the body checks LAIN made before its decorators (400), then the caller and
the permission level (401, 404, 403), then the backend check of mutating routes (503), and
only then the handler. Anything a handler did not expect becomes LAIN's "fatal error" 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from resolvers.core import idempotency
from resolvers.core.backend import ensure_available
from resolvers.core.context import ANONYMOUS, CheckedApp, OpContext, Principal, Services
from resolvers.core.errors import Conflict, DomainError
from rest_compat import errors, jsonbody
from rest_compat.auth import AppStateLike, Level, authorize, principal_of
from rest_compat.envelope import (
    DOCS_URL,
    LAIN_HEADERS,
    Abort,
    Reply,
    json_response,
    preflight_response,
    slash_redirect,
)

__all__ = ["INVALID", "Call", "Endpoint", "Fatal", "Method", "RestApp"]

log = logging.getLogger(__name__)

INVALID = object()  # a body that is not JSON


@dataclass(eq=False)
class Call:
    """One request on its way through a route."""

    request: Request
    services: Services
    names: dict[str, str]  # path parameters, plus what handlers learn (the body's appname…)
    body: bytes
    principal: Principal = ANONYMOUS
    # The app the route names, as the permission check found it for this caller: the
    # resolvers the handler calls do not check it again.
    checked: CheckedApp | None = None

    @property
    def ctx(self) -> OpContext:
        return OpContext(services=self.services, principal=self.principal, checked=self.checked)

    @property
    def method(self) -> str:
        return self.request.method

    def json(self) -> Any:
        """The body as LAIN read it (`json.loads(request.body)`, Content-Type ignored), or
        INVALID. Raises DuplicateKey for a key given twice, which LAIN took the last of."""
        try:
            return jsonbody.loads(self.body)
        except jsonbody.DuplicateKey:
            raise  # _run answers it, naming the key
        except (ValueError, UnicodeDecodeError):
            return INVALID


# Handlers answer with an envelope; the documents (docs, swagger) with a response of their own.
Handler = Callable[[Call], Awaitable[Reply | Response]]


@dataclass(frozen=True, slots=True)
class Fatal:
    """The "fatal error when <phrase>" 500 of a route; `{name}` fields come from Call.names."""

    key: str
    phrase: str
    url: str = DOCS_URL


@dataclass(frozen=True, slots=True)
class Method:
    handler: Handler
    level: Level
    fatal: Fatal
    mutating: bool = False  # refused with 503 while the backend cannot take work
    # Body checks LAIN made before its permission decorators (POST /apps/); may raise Abort.
    prepare: Callable[[Call], None] | None = None
    # For the OpenAPI document: what it does, its JSON body, the statuses it answers with.
    summary: str = ""
    body: str = ""
    statuses: tuple[int, ...] = (200,)
    query: tuple[tuple[str, str, str], ...] = ()  # (name, Swagger type, description)
    # Whether the server's read cache may keep a GET's 200: false for answers read from
    # outside the database and the scheduler's tracked state (logs), or with side effects.
    cached: bool = True


_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str  # after /api/v1/ or /v1/, e.g. "apps/{app}/procs/{proc}/"
    key: str  # the object key of this endpoint's 405
    methods: Mapping[str, Method]
    any_method: Method | None = None  # answers every method alike (oplogs)
    gate: Callable[[Call], None] | None = None  # runs before the method check; may raise
    # Matches every path that starts with `path` (a Django pattern without its `$`).
    prefix: bool = False
    regex: re.Pattern[str] = field(init=False)

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.path))

    def __post_init__(self) -> None:
        # Django's `(?P<name>[^/]+)` groups between literal parts, anchored at both ends.
        parts = _PARAM.split(self.path)  # literal, name, literal, name, ..., literal
        pattern = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
            for index, part in enumerate(parts)
        )
        end = "" if self.prefix else "$"
        object.__setattr__(self, "regex", re.compile(f"^{pattern}{end}"))


class RestApp:
    """The ASGI app mounted at /api/v1 and /v1."""

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self._endpoints = tuple(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        request = Request(scope, receive)
        response = await self._respond(request)
        response.headers.update(LAIN_HEADERS)
        await response(scope, receive, send)

    def _match(self, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        for endpoint in self._endpoints:
            found = endpoint.regex.match(path)
            if found is not None:
                return endpoint, found.groupdict()
        return None

    async def _respond(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return preflight_response()
        path = _route_path(request.scope)
        match = self._match(path)
        if match is None and not path.endswith("/"):
            match = self._match(path + "/")
            if match is not None and request.method != "POST":
                # Django's APPEND_SLASH; a POST is served as if slashed (LAIN's debug page
                # crashed there instead).
                return slash_redirect(request)
        if match is None:
            return json_response(errors.unknown_path(request.url.path))
        endpoint, params = match
        # The pattern, never the path, names the request in the server's metrics.
        request.scope["route_template"] = endpoint.path
        method = endpoint.methods.get(request.method, endpoint.any_method)
        # server.readcache keeps a 200 of this request only when the route says it may.
        request.scope["read_cacheable"] = (
            request.method == "GET" and method is not None and method.cached
        )
        state: AppStateLike = request.state.lain
        call = Call(request, state.services, dict(params), await request.body())
        result = await self._run(endpoint, call)
        return result if isinstance(result, Response) else json_response(result)

    async def _run(self, endpoint: Endpoint, call: Call) -> Reply | Response:
        method = endpoint.methods.get(call.method, endpoint.any_method)
        fatal = method.fatal if method is not None else Fatal(endpoint.key, "handling request")
        try:
            if endpoint.gate is not None:
                endpoint.gate(call)
            if method is None:
                return errors.method_not_allowed(endpoint.key, call.method)
            if call.body:
                call.json()  # a repeated key is refused before anything reads the body
            if method.prepare is not None:
                method.prepare(call)
            call.principal = await principal_of(call.request)
            reading = call.method in ("GET", "HEAD")
            call.checked = await authorize(
                call.ctx, method.level, call.names.get("app"), writes=not reading
            )
            if method.mutating:
                await ensure_available(call.ctx)
            if reading:
                return await method.handler(call)
            return await _once(endpoint, method, call)
        except Abort as abort:
            return abort.reply
        except jsonbody.DuplicateKey as exc:
            # Not LAIN's (it kept the last value): the endpoint's key, our message.
            return Reply(400, endpoint.key, f"invalid request: {exc}")
        except DomainError as exc:
            # What the handler left to the shared outcomes: access (a concurrent change may
            # deny what the check allowed), an unusable backend; anything else was unexpected.
            return errors.shared_reply(exc, call.names) or self._fatal(fatal, call, exc)
        except Exception as exc:
            return self._fatal(fatal, call, exc)

    def _fatal(self, fatal: Fatal, call: Call, exc: Exception) -> Reply:
        # Logged with the request id; the reply names only the kind of failure, since the
        # text of an unexpected exception may show internals.
        log.exception("%s %s failed", call.method, call.request.url.path)
        names = _Names(call.names)
        return errors.fatal(
            fatal.key, fatal.phrase.format_map(names), fatal.url.format_map(names), exc
        )


async def _once(endpoint: Endpoint, method: Method, call: Call) -> Reply | Response:
    """The handler, run once per `Idempotency-Key`: a retry gets the first reply, byte for
    byte, instead of a second deploy."""
    key = call.request.headers.get("idempotency-key")
    if key is None:
        return await method.handler(call)

    async def run() -> Reply | Response:
        return await method.handler(call)

    def encode(result: Reply | Response) -> object:
        if not isinstance(result, Reply):
            raise TypeError("only envelope replies are replayed")
        # The bytes, not the object: a JSONB column would not keep the key order the reply
        # was rendered in.
        return [result.status, bytes(json_response(result).body).decode("ascii")]

    async def decode(stored: object) -> Response:
        match stored:
            case [int() as status, str() as body]:  # what encode stored
                return Response(
                    body.encode("ascii"), status_code=status, media_type="application/json"
                )
        raise TypeError(f"not a stored reply: {stored!r}")

    arguments = {"path": call.request.url.path, "body": call.body.decode("utf-8", "replace")}
    try:
        return await idempotency.run_once(
            call.ctx,
            key,
            f"REST {call.method} {endpoint.key}",
            arguments,
            run,
            encode=encode,
            decode=decode,
        )
    except DomainError as exc:
        if exc.field != "idempotencyKey":
            raise
        # Not LAIN's (it had no such header): the endpoint's key, our message.
        return Reply(409 if isinstance(exc, Conflict) else 400, endpoint.key, exc.message + "\n")


class _Names(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _route_path(scope: Scope) -> str:
    """The path after the mount point (/api/v1 or /v1), without its leading slash."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.lstrip("/")
