"""GraphQL over HTTP and over websockets (graphql-transport-ws), errors as ClientError."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from client.config import Target
from client.errors import ClientError

__all__ = ["Console"]


def _graphql_error(errors: list[dict[str, Any]]) -> ClientError:
    first = errors[0]
    code = (first.get("extensions") or {}).get("code")
    if not isinstance(code, str) or not code:
        # Validation errors (a field this console does not have) carry no code.
        code = "INVALID"
    extensions = first.get("extensions") or {}
    return ClientError(code, str(first.get("message", "unknown error")), extensions)


def _socket_closed(exc: ConnectionClosed) -> ClientError:
    close = exc.rcvd
    if close is not None and close.code == 4401:
        return ClientError("UNAUTHENTICATED", "the console refused the token")
    if close is not None and close.code == 1013:
        return ClientError("BACKEND_UNAVAILABLE", close.reason or "try again later")
    reason = f" ({close.code} {close.reason})" if close is not None else ""
    return ClientError("UNREACHABLE", f"the console closed the connection{reason}")


class Console:
    """One console, as one caller. Use as an async context manager."""

    def __init__(self, target: Target) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self._http = httpx.AsyncClient(base_url=target.server, headers=headers, timeout=60)
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def query(self, document: str, **variables: Any) -> dict[str, Any]:
        """The `data` of a query or mutation; top-level errors raise."""
        try:
            response = await self._http.post(
                "/graphql", json={"query": document, "variables": variables}
            )
        except httpx.TransportError as exc:
            raise ClientError(
                "UNREACHABLE", f"cannot reach {self.target.server}: {exc or type(exc).__name__}"
            ) from None
        if response.status_code == 401:
            raise ClientError("UNAUTHENTICATED", "the console wants a valid token (--token)")
        try:
            body = response.json()
        except ValueError:
            raise ClientError(
                "INTERNAL", f"{self.target.server} answered {response.status_code}, not GraphQL"
            ) from None
        if body.get("errors"):
            raise _graphql_error(body["errors"])
        if response.status_code != 200 or not isinstance(body.get("data"), dict):
            raise ClientError("INTERNAL", f"the console answered {response.status_code}")
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, document: str, field: str, **variables: Any) -> dict[str, Any]:
        """A mutation's payload; its first user error raises, naming the field at fault."""
        payload: dict[str, Any] = (await self.query(document, **variables))[field]
        if payload["errors"]:
            error = payload["errors"][0]
            where = f"{error['field']}: " if error.get("field") else ""
            raise ClientError(error["code"], where + error["message"])
        return payload

    @contextlib.asynccontextmanager
    async def _socket(self) -> AsyncIterator[ClientConnection]:
        """A graphql-transport-ws connection the console has acknowledged (and so
        authenticated: with access control on, it closes with 4401 on a bad token)."""
        url = "ws" + self.target.server.removeprefix("http") + "/graphql"
        init = {"Authorization": f"Bearer {self.target.token}"} if self.target.token else {}
        try:
            async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]  # a Subprotocol str
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                while (message := json.loads(await ws.recv())).get("type") != "connection_ack":
                    if message.get("type") == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                yield ws
        except ConnectionClosed as exc:
            raise _socket_closed(exc) from None
        except (OSError, InvalidHandshake) as exc:
            raise ClientError("UNREACHABLE", f"cannot reach {url}: {exc}") from None

    async def check_token(self) -> None:
        """Raises ClientError(UNAUTHENTICATED) when the console refuses the token."""
        async with self._socket():
            pass

    async def subscribe(self, document: str, **variables: Any) -> AsyncIterator[dict[str, Any]]:
        """The `data` of each event of one subscription, until the console completes it."""
        async with self._socket() as ws:
            ident = str(next(self._ids))
            payload = {"query": document, "variables": variables}
            await ws.send(json.dumps({"type": "subscribe", "id": ident, "payload": payload}))
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    if message["payload"].get("errors"):
                        raise _graphql_error(message["payload"]["errors"])
                    yield message["payload"]["data"]
                elif kind == "error":
                    raise _graphql_error(message["payload"])
                elif kind == "complete":
                    return
