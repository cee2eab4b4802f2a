"""Task output in the fake Nomad: `/v1/client/fs/logs/<alloc_id>` and garbage collection.

Tests write what a task "printed" with `output_of(fake).write(...)`. The endpoint answers
as Nomad 1.x does (read from hashicorp/nomad at aa026cc):

- `command/agent/fs_endpoint.go` `Logs`: the query checks, in this order and with these
  400 texts (alloc id, task, follow, plain, type, offset, origin); Content-Type
  `application/json`, or `text/plain` with `plain=true`.
- `nomad/client_fs_endpoint.go` `logs`: an allocation the servers do not know (never
  existed, or garbage-collected) is a 404 `Unknown allocation "<id>"`.
- `client/fs_endpoint.go` `logs`: an allocation the client has not picked up yet is a 404
  `Unknown allocation "<id>"` (no alloc runner); a task the allocation does not have is a 400
  `unknown task name "<task>"`; a task that never started a 404
  `task "<task>" not started yet. No logs available`. `origin=end` counts `offset`
  back from the end. Without `follow` the stream ends at the end of the file.
- `client/lib/streamframer/framer.go`: frames are JSON objects `{"Offset", "Data"
  (base64), "File", "FileEvent"}` with empty fields left out, written back to back
  (the codec adds no newline); data is batched for 200 ms (`streamBatchWindow`), at most
  64 KiB a frame (`streamFrameSize`); an empty `{}` heartbeat goes out every second
  (`streamHeartbeatRate`; `heartbeat` here, shortened for tests). `Offset` is where the
  frame's data starts in `File`, `alloc/logs/<task>.<type>.<index>`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import AsyncIterator
from weakref import WeakKeyDictionary

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_objects import FakeError

__all__ = ["FakeTaskOutput", "collect_garbage", "logs_response", "output_of"]

_FRAME_SIZE = 64 * 1024
_BATCH_WINDOW = 0.2
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_TERMINAL = {"complete", "failed", "lost"}


class FakeTaskOutput:
    """What each allocation's task wrote to stdout and stderr (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, str], bytearray] = {}

    def write(self, alloc_id: str, stream: str, data: bytes) -> None:
        with self._lock:
            self._data.setdefault((alloc_id, stream), bytearray()).extend(data)

    def read(self, alloc_id: str, stream: str, start: int) -> bytes:
        with self._lock:
            return bytes(self._data.get((alloc_id, stream), b"")[start:])

    def size(self, alloc_id: str, stream: str) -> int:
        with self._lock:
            return len(self._data.get((alloc_id, stream), b""))

    def forget(self, alloc_id: str) -> None:
        with self._lock:
            for key in [key for key in self._data if key[0] == alloc_id]:
                del self._data[key]


_outputs: WeakKeyDictionary[FakeNomad, FakeTaskOutput] = WeakKeyDictionary()


def output_of(fake: FakeNomad) -> FakeTaskOutput:
    with fake.lock:
        if fake not in _outputs:
            _outputs[fake] = FakeTaskOutput()
        return _outputs[fake]


def collect_garbage(fake: FakeNomad, alloc_id: str) -> None:
    """What Nomad's GC does to a terminal allocation: it and its files are gone."""
    with fake.lock:
        alloc = fake.allocs[alloc_id]
        if alloc.client not in _TERMINAL and alloc.desired == "run":
            raise AssertionError(f"Nomad collects only terminal allocations, not {alloc_id}")
        del fake.allocs[alloc_id]
        output_of(fake).forget(alloc_id)


def _parse_bool(name: str, raw: str) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    message = f'strconv.ParseBool: parsing "{raw}": invalid syntax'
    raise FakeError(400, f"failed to parse {name} field to boolean: {message}")


def _check(request: Request) -> tuple[str, str, bool, bool, int, str]:
    query = request.query_params
    alloc_id = request.path_params.get("alloc_id", "")
    if not alloc_id:
        raise FakeError(400, "must provide a valid alloc id")
    task = query.get("task", "")
    if not task:
        raise FakeError(400, "must provide task name")
    follow = _parse_bool("follow", query["follow"]) if query.get("follow") else False
    plain = _parse_bool("plain", query["plain"]) if query.get("plain") else False
    stream = query.get("type", "")
    if stream not in ("stdout", "stderr"):
        raise FakeError(400, "must provide log type (stdout/stderr)")
    offset = 0
    if query.get("offset"):
        try:
            offset = int(query["offset"])
        except ValueError:
            raw = query["offset"]
            message = f'strconv.ParseInt: parsing "{raw}": invalid syntax'
            raise FakeError(400, f"error parsing offset: {message}") from None
    origin = query.get("origin") or "start"
    if origin not in ("start", "end"):
        raise FakeError(400, "origin must be start or end")
    return alloc_id, task, follow, plain, offset, origin


def logs_response(fake: FakeNomad, request: Request, *, heartbeat: float) -> Response:
    alloc_id, task, follow, plain, offset, origin = _check(request)
    stream = request.query_params["type"]
    with fake.lock:
        alloc = fake.allocs.get(alloc_id)
        if alloc is None:
            return PlainTextResponse(f'Unknown allocation "{alloc_id}"', status_code=404)
        states = alloc.doc.get("TaskStates")
        if states is None:
            # Placed but not picked up by its client yet: the client has no alloc runner
            # for it (`getAllocRunner` fails) and answers 404 Unknown allocation.
            return PlainTextResponse(f'Unknown allocation "{alloc_id}"', status_code=404)
        state = states.get(task)
        if state is None:
            raise FakeError(400, f'unknown task name "{task}"')
        if not state.get("StartedAt") or state["StartedAt"].startswith("0001-01-01"):
            raise FakeError(404, f'task "{task}" not started yet. No logs available')
    output = output_of(fake)
    size = output.size(alloc_id, stream)
    start = max(0, size - offset) if origin == "end" else min(offset, size)
    body = _frames(fake, output, alloc_id, task, stream, start, follow, plain, heartbeat)
    media = "text/plain" if plain else "application/json"
    return StreamingResponse(body, media_type=media)


async def _frames(
    fake: FakeNomad,
    output: FakeTaskOutput,
    alloc_id: str,
    task: str,
    stream: str,
    position: int,
    follow: bool,
    plain: bool,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    file = f"alloc/logs/{task}.{stream}.0"
    beat = time.monotonic()
    while True:
        data = output.read(alloc_id, stream, position)
        for start in range(0, len(data), _FRAME_SIZE):
            chunk = data[start : start + _FRAME_SIZE]
            if plain:
                yield chunk
            else:
                frame: dict[str, object] = {"Offset": position + start}
                if not frame["Offset"]:
                    del frame["Offset"]  # `json:",omitempty"`
                frame |= {"Data": base64.b64encode(chunk).decode(), "File": file}
                yield json.dumps(frame, separators=(",", ":")).encode()
        position += len(data)
        if not follow:
            return
        with fake.lock:
            if alloc_id not in fake.allocs:
                return  # collected: the client's alloc dir is gone
        if time.monotonic() - beat >= heartbeat:
            beat = time.monotonic()
            if not plain:
                yield b"{}"
        await asyncio.sleep(min(_BATCH_WINDOW, heartbeat))
