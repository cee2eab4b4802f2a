"""The fake Nomad served over real HTTP on 127.0.0.1, for clients that need a socket
(python-nomad speaks through requests).

    server = FakeNomadServer().start()     # uvicorn in a daemon thread, port picked by the OS
    server.url                             # http://127.0.0.1:<port>
    server.fake.settle()                   # drive the cluster
    server.faults.http_500 = True          # misbehave (see Faults)
    server.stop()

Endpoints follow Nomad's paths, query parameters (`namespace`, `index`, `filter`,
`purge`, `topic`, ...), JSON field names, `X-Nomad-Index` headers and status codes with
plain-text error bodies. The event stream is NDJSON with a `{}` heartbeat on connect and
every `heartbeat` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_logs import logs_response
from tests.fakes.nomad_objects import FakeError

__all__ = ["FakeNomadServer", "Seen"]

_POLL = 0.01
# Seconds between the event stream's heartbeats of the tests' shared server (tests/conftest.py).
HEARTBEAT = 0.1
_WRITES = ("PUT", "POST", "DELETE")


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the fake received."""

    method: str
    path: str
    params: dict[str, list[str]]


class FakeNomadServer:
    """A FakeNomad behind uvicorn. `auto_settle` (seconds) makes the cluster step on a
    timer, like a real one; None (the default) leaves every step to the test."""

    def __init__(
        self,
        fake: FakeNomad | None = None,
        *,
        heartbeat: float = 0.2,
        auto_settle: float | None = None,
        tls: tuple[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.tls = tls  # (certificate file, key file): serve HTTPS
        # Credentials a reverse proxy in front of Nomad asks for (what NOMAD_HTTP_AUTH is
        # for): without them it answers 401 before Nomad sees the request.
        self.basic_auth = basic_auth
        self.fake = fake or FakeNomad()
        self.faults = self.fake.faults
        self.heartbeat = self._default_heartbeat = heartbeat
        self.auto_settle = auto_settle
        self.port = 0
        self.seen: list[Seen] = []
        self.closing = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.faults.connect(refuse=self.stop, accept=self._reopen)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FakeNomadServer:
        """Listen (on the same port as before, after a stop) and serve in a thread."""
        if self.running:
            raise RuntimeError("the fake Nomad server is already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it; without it every keep-alive request waits ~40 ms
        # for a delayed ACK (Nagle).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.closing.clear()
        config = uvicorn.Config(
            _app(self),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            loop="asyncio",
            http="h11",
            ssl_certfile=self.tls[0] if self.tls else None,
            ssl_keyfile=self.tls[1] if self.tls else None,
        )
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(server, listener)),
            name=f"fake-nomad-{self.port}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Nomad server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections and open streams are cut."""
        self.closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def reset(self, fake: FakeNomad | None = None) -> FakeNomadServer:
        """Serve a fresh cluster (and listen again if a test closed the socket), so one
        server can serve many tests."""
        self.faults.hang = self.faults.stream_silent = False  # releases waiting handlers
        self.fake = fake or FakeNomad()
        self.faults = self.fake.faults
        self.faults.connect(refuse=self.stop, accept=self._reopen)
        self.heartbeat = self._default_heartbeat
        self.auto_settle = None
        self.seen.clear()
        self._reopen()
        return self

    def _reopen(self) -> None:
        if not self.running:
            self.start()

    async def _serve(self, server: uvicorn.Server, listener: socket.socket) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            await server.serve(sockets=[listener])
        finally:
            ticker.cancel()
            listener.close()

    async def _tick(self) -> None:
        while True:
            interval = self.auto_settle
            await asyncio.sleep(interval or 0.05)
            if interval:
                self.fake.step()


# -- the ASGI app --------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def _app(server: FakeNomadServer) -> Starlette:
    # Handlers look up `server.fake` on every call: `reset()` swaps in a new cluster.
    def endpoint(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def guarded(request: Request) -> Response:
            server.seen.append(
                Seen(
                    request.method,
                    request.url.path,
                    {k: request.query_params.getlist(k) for k in request.query_params},
                )
            )
            refused = await _guard(server, request)
            if refused is not None:
                return refused
            try:
                return await handler(request)
            except FakeError as exc:
                return PlainTextResponse(exc.text, status_code=exc.status)

        return guarded

    async def leader(request: Request) -> Response:
        return _json(server.fake.leader())

    async def jobs(request: Request) -> Response:
        if request.method == "GET":
            found, index = server.fake.list_jobs(
                _namespace(request),
                prefix=request.query_params.get("prefix", ""),
                meta=_flag(request, "meta"),
            )
            return _json(found, index)
        return _json(server.fake.register(_namespace(request), await _body(request)))

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        namespace = _namespace(request)
        if request.method == "GET":
            return _json(*server.fake.read_job(namespace, job_id))
        if request.method == "DELETE":
            return _json(server.fake.deregister(namespace, job_id, purge=_flag(request, "purge")))
        return _json(server.fake.register(namespace, await _body(request), path_id=job_id))

    async def job_versions(request: Request) -> Response:
        return _json(*server.fake.job_versions(_namespace(request), request.path_params["job_id"]))

    async def job_allocations(request: Request) -> Response:
        found, index = server.fake.job_allocations(
            _namespace(request), request.path_params["job_id"], all_=_flag(request, "all")
        )
        return _json(found, index)

    async def job_deployments(request: Request) -> Response:
        found, index = server.fake.job_deployments(
            _namespace(request), request.path_params["job_id"]
        )
        if request.url.path.endswith("/deployment"):
            return _json(found[0] if found else None, index)
        return _json(found, index)

    async def job_scale(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "GET":
            return _json(server.fake.scale_status(_namespace(request), job_id), server.fake.index)
        return _json(server.fake.scale(_namespace(request), job_id, await _body(request)))

    async def job_evaluate(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        return _json(server.fake.evaluate(_namespace(request), job_id, await _body(request)))

    async def allocations(request: Request) -> Response:
        found, index = server.fake.list_allocations(
            _namespace(request),
            filter_=request.query_params.get("filter", ""),
            resources=_flag(request, "resources"),
        )
        return _json(found, index)

    async def allocation(request: Request) -> Response:
        return _json(*server.fake.read_allocation(request.path_params["alloc_id"]))

    async def allocation_checks(request: Request) -> Response:
        return _json(server.fake.allocation_checks(request.path_params["alloc_id"]))

    async def allocation_restart(request: Request) -> Response:
        alloc_id = request.path_params["alloc_id"]
        body = await _body(request)
        # The call returns only once the old task is dead (client/allocrunner/taskrunner/
        # lifecycle.go: "Blocks until existing task exits"), up to its KillTimeout.
        await asyncio.sleep(server.fake.kill_seconds(alloc_id))
        return _json(server.fake.restart_allocation(alloc_id, body))

    async def deployments(request: Request) -> Response:
        found, index = server.fake.list_deployments(
            _namespace(request), filter_=request.query_params.get("filter", "")
        )
        return _json(found, index)

    async def deployment_promote(request: Request) -> Response:
        deployment_id = request.path_params["deployment_id"]
        return _json(server.fake.promote(deployment_id, await _body(request)))

    async def event_stream(request: Request) -> Response:
        # The subscription's place in the buffer is fixed now, before the headers go
        # out, as Nomad's is: what happens later reaches it or gets it dropped.
        start = int(request.query_params.get("index", "0") or 0)
        first = server.fake.stream_frames(start=start, after=0) or []
        body = _stream(server, request, first, after=first[-1]["Index"] if first else start - 1)
        return StreamingResponse(
            body, media_type="application/json", headers=_index(server.fake.index)
        )

    async def task_logs(request: Request) -> Response:
        return logs_response(server.fake, request, heartbeat=server.heartbeat)

    write = ["POST", "PUT"]
    routes = [
        Route("/v1/status/leader", endpoint(leader)),
        Route("/v1/jobs", endpoint(jobs), methods=["GET", *write]),
        Route("/v1/job/{job_id}", endpoint(job), methods=["GET", "DELETE", *write]),
        Route("/v1/job/{job_id}/versions", endpoint(job_versions)),
        Route("/v1/job/{job_id}/allocations", endpoint(job_allocations)),
        Route("/v1/job/{job_id}/deployments", endpoint(job_deployments)),
        Route("/v1/job/{job_id}/deployment", endpoint(job_deployments)),
        Route("/v1/job/{job_id}/scale", endpoint(job_scale), methods=["GET", *write]),
        Route("/v1/job/{job_id}/evaluate", endpoint(job_evaluate), methods=write),
        Route("/v1/allocations", endpoint(allocations)),
        Route("/v1/allocation/{alloc_id}", endpoint(allocation)),
        Route("/v1/allocation/{alloc_id}/checks", endpoint(allocation_checks)),
        Route(
            "/v1/client/allocation/{alloc_id}/restart",
            endpoint(allocation_restart),
            methods=write,
        ),
        Route("/v1/deployments", endpoint(deployments)),
        Route(
            "/v1/deployment/promote/{deployment_id}",
            endpoint(deployment_promote),
            methods=write,
        ),
        Route("/v1/event/stream", endpoint(event_stream)),
        Route("/v1/client/fs/logs/{alloc_id}", endpoint(task_logs)),
    ]
    return Starlette(routes=routes)


async def _guard(server: FakeNomadServer, request: Request) -> Response | None:
    faults = server.faults
    if faults.hang or (faults.hang_writes and request.method in _WRITES):
        # Polled: the switch is flipped from the test's thread, not this event loop.
        for _ in range(int(faults.hang_seconds / _POLL)):
            if not (faults.hang or faults.hang_writes) or server.closing.is_set():
                break
            await asyncio.sleep(_POLL)
        return PlainTextResponse("fake: injected hang, nothing was done", status_code=504)
    if server.basic_auth is not None:
        expected = base64.b64encode(":".join(server.basic_auth).encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return PlainTextResponse("401 Authorization Required", status_code=401)
    if faults.take_failure():
        return PlainTextResponse("fake: injected server error", status_code=500)
    token = server.fake.token
    if token is not None:
        given = request.headers.get("X-Nomad-Token") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        if given != token:
            return PlainTextResponse("Permission denied", status_code=403)
    return None


async def _stream(
    server: FakeNomadServer, request: Request, first: list[dict[str, Any]], *, after: int
) -> AsyncIterator[bytes]:
    fake, faults = server.fake, server.faults
    namespace = _namespace(request)
    topics = [_topic(raw) for raw in request.query_params.getlist("topic")] or [("*", "*")]
    after = max(after, 0)
    pending: list[dict[str, Any]] | None = first
    # nomad/stream/ndjson.go: NewJsonStream sends a first heartbeat at once, then one per
    # interval (30 s in Nomad; `server.heartbeat` here).
    yield b"{}\n"
    if faults.stream_flaps:
        return
    beat = time.monotonic()
    while not server.closing.is_set():
        if faults.stream_silent:
            await asyncio.sleep(_POLL)
            continue
        frames = pending or fake.stream_frames(start=None, after=after)
        pending = None
        if frames is None:
            return  # fell behind the buffer: Nomad drops such readers
        for frame in frames:
            after = frame["Index"]
            events = [e for e in frame["Events"] if _wanted(e, namespace, topics)]
            if not events:
                continue
            if faults.drop_now():
                return  # the response ends mid-stream, as when Nomad drops a slow reader
            yield (json.dumps({"Index": frame["Index"], "Events": events}) + "\n").encode()
        if time.monotonic() - beat >= server.heartbeat:
            beat = time.monotonic()
            yield b"{}\n"
        await asyncio.sleep(_POLL)


def _topic(raw: str) -> tuple[str, str]:
    topic, _, key = raw.partition(":")
    return topic, key or "*"


def _wanted(event: dict[str, Any], namespace: str, topics: list[tuple[str, str]]) -> bool:
    if namespace != "*" and event.get("Namespace") not in (namespace, ""):
        return False
    keys = {event.get("Key"), *(event.get("FilterKeys") or ())}
    return any(
        topic in ("*", event["Topic"]) and (key == "*" or key in keys) for topic, key in topics
    )


def _namespace(request: Request) -> str:
    return request.query_params.get("namespace") or "default"


def _flag(request: Request, name: str) -> bool:
    # Go's strconv.ParseBool, which python-nomad's "True" also satisfies.
    return request.query_params.get(name, "") in ("1", "t", "T", "true", "TRUE", "True")


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise FakeError(400, "failed to parse JSON input") from None


def _index(index: int) -> dict[str, str]:
    return {"X-Nomad-Index": str(index), "X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": "0"}


def _json(body: Any, index: int | None = None) -> Response:
    return JSONResponse(body, headers=_index(index) if index is not None else None)
