"""logs and events: what is held now, or (-f) followed as it happens."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from rich.markup import escape

from client import documents as doc
from client.errors import ClientError
from client.render import Output
from client.transport import Console
from client.verbs import fetch_app

__all__ = ["events", "logs", "merge"]

# Without -f, `events` prints the history the console holds and stops once it has sent no
# event for this long: the subscription has no end-of-history marker.
HISTORY_QUIET_SECONDS = 2.0


def _print_line(out: Output, proc: str, line: dict[str, Any]) -> None:
    record = {"proc": proc, **line}
    if out.as_json:
        out.json(record)
        return
    when = line["time"] or "-"
    stream = "" if line["stream"] == "STDOUT" else " [stderr]"
    where = f"{escape(proc)}.{line['instance']}{stream}"
    out.terminal.print(f"[dim]{escape(when)}[/dim] {where}: {escape(line['text'])}", soft_wrap=True)


async def merge(streams: list[AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """Items of several streams as they come; the first failure ends them all."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()

    async def pump(stream: AsyncIterator[Any]) -> None:
        try:
            async for item in stream:
                await queue.put((True, item))
        except Exception as exc:
            await queue.put((False, exc))

    tasks = [asyncio.create_task(pump(stream)) for stream in streams]
    try:
        while True:
            ok, item = await queue.get()
            if not ok:
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)


async def _follow_logs(
    console: Console, out: Output, args: argparse.Namespace, procs: list[str]
) -> None:
    async def one(proc: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for data in console.subscribe(
            doc.LOGS_SUBSCRIPTION, app=args.app, proc=proc, n=args.instance, tail=args.tail
        ):
            yield proc, data["logs"]

    async for proc, entry in merge([one(proc) for proc in procs]):
        if entry["line"] is None:
            out.note(f"… {entry['droppedLines']} lines of {args.app}.{proc} dropped (slow reader)")
        else:
            _print_line(out, proc, entry["line"])


async def logs(console: Console, out: Output, args: argparse.Namespace) -> int:
    if args.tail < 0:
        raise ClientError("INVALID", f"--tail: must be 0 or more, got {args.tail}")
    app = await fetch_app(console, args.app)
    names = [p["name"] for p in app["procs"]]
    if args.proc is not None and args.proc not in names:
        raise ClientError("NOT_FOUND", f"{args.app} has no proc {args.proc!r}")
    wanted = [args.proc] if args.proc is not None else names
    if args.follow:
        await _follow_logs(console, out, args, wanted)
        return 0
    found = (await console.query(doc.LOGS_QUERY, name=args.app, tail=args.tail))["app"]
    lines = [
        (proc["name"], line)
        for proc in found["procs"]
        if proc["name"] in wanted
        for instance in proc["instances"]
        if args.instance is None or instance["number"] == args.instance
        for line in instance["logs"]
    ]
    lines.sort(key=lambda item: item[1]["time"] or "")  # stable: untimed lines keep their order
    for proc, line in lines[-args.tail :] if args.tail else []:
        _print_line(out, proc, line)
    return 0


def _print_event(out: Output, event: dict[str, Any]) -> None:
    if out.as_json:
        out.json(event)
        return
    proc, instance = event["proc"], event["instance"]
    where = event["app"]["name"]
    if proc is not None:
        where += f".{proc['name']}"
    if instance is not None:
        where += f".{instance['number']}"
        state = f"{instance['status']} {instance['release']} {instance['lastError']}"
    elif proc is not None:
        state = f"{proc['health']} rollout {proc['rollout']} x{proc['numInstances']}"
    else:
        state = f"{event['app']['status']} {event['app']['health']}"
    out.terminal.print(
        f"{event['cursor']:>8}  {event['kind']:<12} {escape(where)}  {escape(state.strip())}",
        soft_wrap=True,
    )


async def _print_events(
    console: Console, out: Output, args: argparse.Namespace, after: str | None
) -> int:
    stream = console.subscribe(doc.APP_EVENTS, name=args.app, after=after)
    iterator = aiter(stream)
    try:
        while True:
            try:
                if args.follow:
                    data = await anext(iterator)
                else:
                    data = await asyncio.wait_for(anext(iterator), HISTORY_QUIET_SECONDS)
            except (StopAsyncIteration, TimeoutError):
                return 0
            _print_event(out, data["appEvents"])
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator, typed as AsyncIterator


async def events(console: Console, out: Output, args: argparse.Namespace) -> int:
    if args.follow or args.after is not None:
        return await _print_events(console, out, args, args.after)
    try:
        return await _print_events(console, out, args, "0")  # all the console holds
    except ClientError as exc:
        oldest = exc.extensions.get("oldestCursor")
        if exc.code != "CURSOR_EXPIRED" or not isinstance(oldest, str):
            raise
        # The oldest events were pruned: what is held starts after this cursor.
        return await _print_events(console, out, args, oldest)
