"""Many graphql-transport-ws subscribers in one process: `python -m bench.wsclients`.

Talks to its parent in JSON lines. Out: `{"ready": n}` once every socket is subscribed,
`{"complete": cursor}` each time every socket has received the event with that cursor, and
on the `dump` command `{"arrivals": {cursor: [ns, ...]}, "errors": [...]}`. In: `dump`.

An arrival is stamped with CLOCK_MONOTONIC (shared by every process of the machine) the
moment the socket hands the frame over, before it is parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

__all__ = ["main"]

_CONNECT_AT_ONCE = 50  # connection attempts in flight, so the listen backlog never overflows
_TIMEOUT = 60.0


class Subscribers:
    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.count: int = args.count
        self.payload = {"query": args.query, "variables": json.loads(args.variables)}
        self.field: str = args.field
        self.compression: str | None = None if args.no_compression else "deflate"
        self.arrivals: dict[str, list[int]] = defaultdict(list)
        self.errors: list[str] = []

    async def open(self, gate: asyncio.Semaphore) -> ClientConnection:
        async with gate:
            ws = await connect(
                self.url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                compression=self.compression,
                ping_interval=None,  # the server pings; the library answers
                open_timeout=_TIMEOUT,
                max_size=None,
            )
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), _TIMEOUT))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": self.payload}))
            return ws

    async def read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            stamp = time.monotonic_ns()
            message: dict[str, Any] = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "next":
                payload = message["payload"]
                data = payload.get("data") or {}
                event = data.get(self.field)
                if event is None:
                    self.errors.append(json.dumps(payload)[:300])
                    continue
                cursor = event["cursor"]
                arrived = self.arrivals[cursor]
                arrived.append(stamp)
                if len(arrived) == self.count:
                    _say({"complete": cursor})
            elif kind != "pong":
                self.errors.append(json.dumps(message)[:300])


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _run(args: argparse.Namespace) -> None:
    subscribers = Subscribers(args)
    gate = asyncio.Semaphore(_CONNECT_AT_ONCE)
    sockets = await asyncio.gather(*(subscribers.open(gate) for _ in range(subscribers.count)))
    readers = [asyncio.create_task(subscribers.read(ws)) for ws in sockets]
    _say({"ready": len(sockets)})
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line or line.strip() == "dump":
            break
    _say({"arrivals": subscribers.arrivals, "errors": subscribers.errors[:20]})
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wsclients")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--variables", default="{}")
    parser.add_argument("--field", required=True, help="the subscription's root field")
    parser.add_argument("--no-compression", action="store_true")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
