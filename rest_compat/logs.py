"""`/apps/<a>/procs/<p>/logs/`: a proc's output as plain text, followed with `follow=1`.

An extension (LAIN had no such path): one line per log line,
`<time> <proc>.<instance> <stream> <text>`, chunked while following, so `curl -N` tails
an app. Errors keep LAIN's envelope and its 404s.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import datetime

from starlette.responses import Response, StreamingResponse

from resolvers import logs
from resolvers.core.errors import InvalidInput, NotFound
from rest_compat import errors
from rest_compat.envelope import Abort, Reply
from rest_compat.routing import Call

__all__ = ["proc_logs"]

_TEXT = "text/plain; charset=utf-8"
_FOLLOW = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


@functools.lru_cache(maxsize=4096)
def _time(when: datetime | None) -> str:
    # Cached: the lines of one read share their time, and every follower renders them.
    if when is None:
        return "-"
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render_line(proc: str, item: logs.LogLine | logs.LogsDropped) -> str:
    if isinstance(item, logs.LogsDropped):
        return f"{_time(item.time)} {proc}.- lain {item.text}\n"
    return f"{_time(item.time)} {proc}.{item.instance} {item.stream} {item.text}\n"


def _integer(call: Call, name: str, default: int | None) -> int | None:
    raw = call.request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}", field=name) from None


def _follow(call: Call) -> bool:
    raw = call.request.query_params.get("follow", "").lower()
    if raw not in _FOLLOW:
        raise InvalidInput(f"follow must be 1 or 0, got {raw!r}", field="follow")
    return _FOLLOW[raw]


async def proc_logs(call: Call) -> Reply | Response:
    app, proc = call.names["app"], call.names["proc"]
    try:
        instance = _integer(call, "instance", None)
        tail = _integer(call, "tail", 100)
        assert tail is not None
        if _follow(call):
            followed = await logs.follow_logs(
                call.ctx, app=app, proc=proc, instance=instance, tail=tail
            )
            return StreamingResponse(_chunks(proc, followed), media_type=_TEXT)
        lines = await logs.tail_logs(call.ctx, app=app, proc=proc, instance=instance, tail=tail)
    except InvalidInput as exc:
        raise Abort(Reply(400, "logs", f"invalid request: {exc.message}\n")) from None
    except NotFound as exc:
        if exc.field == "app":
            raise Abort(errors.not_deployed(app, "logs")) from None
        if exc.field == "proc":
            raise Abort(errors.no_such_proc(app, proc, key="logs")) from None
        url = f"/v1/apps/{app}/procs/{proc}/"
        raise Abort(Reply(404, "logs", exc.message, url)) from None
    return Response("".join(render_line(proc, line) for line in lines), media_type=_TEXT)


async def _chunks(proc: str, followed: AsyncIterator[logs.FollowedBatch]) -> AsyncIterator[str]:
    async for batch in followed:  # one chunk per batch read, not per line
        yield "".join(render_line(proc, item) for item in batch.items)
