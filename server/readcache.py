"""Reads answered from what changed: rendered read answers kept by version, and ETags.

A read's answer is a function of the request, the caller's access and the console's state.
The state has a version that moves with every change (`resolvers.core.readversion`); this
middleware keeps each rendered answer with the version it was rendered at and serves it
again, byte for byte, while the version is still the same.

- What is cached: REST GETs under /api/v1 and /v1 that their route allows (not logs, not
  the SSO redirect), and GraphQL queries over GET and POST (`schema.caching` decides which
  documents: never mutations or subscriptions, never instance logs). Only 200 answers the
  door marked cacheable (GraphQL: without errors).
- The key: the caller (name, admin flag, signed in), the Host (REST renders URLs with it),
  the Accept header (GraphQL), and the request itself (REST path and query; GraphQL the GET
  query string or the POST body). Memberships and roles are state, so the version covers
  them. The server's gate has authenticated the token of this very request before the
  cache is asked: a revoked or expired token is the anonymous caller here.
- Never stale: the version is read before the answer is rendered, so an answer is never
  kept under a version newer than its data. A version that cannot be known (the Nomad
  backend reading Nomad itself while its event stream catches up) caches nothing.
- ETag: a digest of the body on every cacheable GET answer; `If-None-Match` with it gets
  304. POSTs get no ETag (a matching If-None-Match on a POST would mean 412, not 304).
- Memory: least recently used answers go past `max_bytes`; an answer over a quarter of it
  is never kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.core.context import Principal
from resolvers.core.readversion import ReadVersion, read_version
from schema.caching import cacheable_document
from server.metrics import Metrics

__all__ = ["CACHEABLE", "CachedAnswer", "ReadCache", "ReadCacheMiddleware"]

log = logging.getLogger(__name__)

# Set to True in the scope by a door whose answer to this request may be cached.
CACHEABLE = "read_cacheable"
_REST_PREFIXES = ("/api/v1/", "/v1/")
_MAX_POST_BODY = 64 * 1024  # bigger GraphQL requests are executed, never cached
_ENTRY_OVERHEAD = 400  # bytes of bookkeeping an entry costs beyond its body and headers
_DROPPED_ON_304 = {b"content-length", b"content-type"}


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    version: ReadVersion | None  # None: rendered when no version could be known; not kept
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    etag: bytes
    route: str | None  # the REST route template, for the request metrics
    size: int


class ReadCache:
    """Answers by key, each valid for the version it was rendered at; bounded in bytes."""

    def __init__(self, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("a read cache needs a positive size; leave it out to switch off")
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: OrderedDict[Hashable, CachedAnswer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Hashable, version: ReadVersion) -> CachedAnswer | None:
        found = self._answers.get(key)
        if found is None:
            return None
        if found.version != version:
            self._drop(key)  # superseded: it can never be served again
            return None
        self._answers.move_to_end(key)
        return found

    def put(self, key: Hashable, answer: CachedAnswer) -> None:
        if answer.version is None or answer.size > self.max_bytes // 4:
            return
        if key in self._answers:
            self._drop(key)
        self._answers[key] = answer
        self.bytes += answer.size
        while self.bytes > self.max_bytes:
            _, dropped = self._answers.popitem(last=False)
            self.bytes -= dropped.size

    def _drop(self, key: Hashable) -> None:
        self.bytes -= self._answers.pop(key).size


@dataclass(frozen=True, slots=True)
class _Read:
    """A request the cache may answer: its key material, and whether it is a GET."""

    material: tuple[str | bytes, ...]
    get: bool


class ReadCacheMiddleware:
    """Serves repeated reads from `cache` (see the module); everything else passes."""

    def __init__(self, app: ASGIApp, *, cache: ReadCache, metrics: Metrics | None = None) -> None:
        self.app = app
        self.cache = cache
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        principal: Principal | None = scope.get("state", {}).get("principal")
        headers = Headers(scope=scope)
        body = b""
        if scope["method"] == "POST":
            if _path(scope) != "/graphql":
                await self.app(scope, receive, send)
                return
            body, receive = await _buffered(receive)
        read = _read_of(scope, headers, body)
        if read is None or principal is None:
            await self.app(scope, receive, send)
            return
        key = (
            principal.name,
            principal.is_admin,
            principal.authenticated,
            headers.get("host", ""),
            *read.material,
        )
        version = await self._version(scope)
        if version is not None:
            found = self.cache.get(key, version)
            if found is not None:
                self._count("hit")
                if found.route is not None:
                    scope["route_template"] = found.route
                await _answer(send, found, etag=read.get, if_none_match=_if_none_match(headers))
                return
        self._count("miss" if version is not None else "unversioned")
        await self.app(scope, receive, self._capture(scope, send, key, version, read, headers))

    def _capture(
        self,
        scope: Scope,
        send: Send,
        key: Hashable,
        version: ReadVersion | None,
        read: _Read,
        headers: Headers,
    ) -> Send:
        """A `send` that keeps a cacheable 200 (and answers it, maybe as 304) and passes
        anything else through as it comes, streams included."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] == 200 and scope.get(CACHEABLE) is True:
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                content = b"".join(chunks)
                kept = tuple((bytes(k), bytes(v)) for k, v in start.get("headers", ()))
                route = scope.get("route_template")
                answer = CachedAnswer(
                    version=version,
                    status=200,
                    headers=kept,
                    body=content,
                    etag=_etag(content),
                    route=route if isinstance(route, str) else None,
                    size=len(content)
                    + sum(len(k) + len(v) for k, v in kept)
                    + sum(len(part) for part in read.material)  # the key is kept too
                    + _ENTRY_OVERHEAD,
                )
                if version is not None:
                    self.cache.put(key, answer)
                    self._gauge()
                await _answer(send, answer, etag=read.get, if_none_match=_if_none_match(headers))
                return
            await send(message)

        return capture

    async def _version(self, scope: Scope) -> ReadVersion | None:
        try:
            return await read_version(scope["state"]["lain"].services)
        except Exception:
            # The database is away: the door answers (or fails) on its own, uncached.
            log.warning("cannot read the state version; answering uncached", exc_info=True)
            return None

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.read_cache.labels(outcome).inc()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.read_cache_bytes.set(self.cache.bytes)


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _read_of(scope: Scope, headers: Headers, body: bytes) -> _Read | None:
    """What identifies the request, when it is a read the cache may answer."""
    path = _path(scope)
    query_string: bytes = scope.get("query_string", b"")
    if scope["method"] == "GET" and path.startswith(_REST_PREFIXES):
        return _Read(("rest", path, query_string), get=True)
    if path != "/graphql":
        return None
    accept = headers.get("accept", "")
    if scope["method"] == "GET":
        documents = parse_qs(query_string.decode("latin-1")).get("query")
        if not documents or not cacheable_document(documents[0]):
            return None
        return _Read(("graphql", accept, query_string), get=True)
    if len(body) > _MAX_POST_BODY:
        return None
    if not headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):  # a batch, or nothing Strawberry would run
        return None
    document = request.get("query")
    if not isinstance(document, str) or not cacheable_document(document):
        return None
    return _Read(("graphql", accept, body), get=False)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request body, and a `receive` that hands the same messages on."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(chunks), replay


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'


def _if_none_match(headers: Headers) -> bytes | None:
    value = headers.get("if-none-match")
    return None if value is None else value.encode("latin-1")


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 13.1.2: `*`, or any listed tag equal by the weak comparison."""
    for tag in if_none_match.split(b","):
        tag = tag.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


async def _answer(
    send: Send, answer: CachedAnswer, *, etag: bool, if_none_match: bytes | None
) -> None:
    if etag and if_none_match is not None and _matches(if_none_match, answer.etag):
        headers = [(k, v) for k, v in answer.headers if k.lower() not in _DROPPED_ON_304]
        await send(
            {
                "type": "http.response.start",
                "status": 304,
                "headers": [*headers, (b"etag", answer.etag)],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    headers = list(answer.headers)
    if etag:
        headers.append((b"etag", answer.etag))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
