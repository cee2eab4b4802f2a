"""`watch [APP]`: a live table of procs and instances, redrawn in place on every event."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from client import documents as doc
from client.render import Output, app_view, apps_table, instances_table, procs_table
from client.transport import Console
from client.verbs import fetch_app, list_apps

__all__ = ["watch"]

# Events drive the redraw; this slower re-read finds apps deployed after the watch began.
_RELIST_SECONDS = 5.0


@contextlib.contextmanager
def _keys(quit_on_q: asyncio.Event) -> Iterator[None]:
    """Single keys from a terminal on stdin (no Enter needed); `q` sets `quit_on_q`."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, quit_on_q.set)
    fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    saved: list[Any] = termios.tcgetattr(fd) if fd is not None else []
    try:
        if fd is not None:
            tty.setcbreak(fd)  # keeps ISIG: Ctrl-C still interrupts

            def read_key() -> None:
                if b"q" in os.read(fd, 64).lower():
                    quit_on_q.set()

            loop.add_reader(fd, read_key)
        yield
    finally:
        if fd is not None:
            loop.remove_reader(fd)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        loop.remove_signal_handler(signal.SIGINT)


async def _view(console: Console, app: str | None) -> tuple[Any, RenderableType]:
    footer = Text("q or Ctrl-C to quit", style="dim")
    if app is not None:
        found = await fetch_app(console, app)
        return found, Group(app_view(found), Text(""), footer)
    listed = await list_apps(console)
    details = [await fetch_app(console, a["name"]) for a in listed]
    procs = [{**p, "name": f"{a['name']}.{p['name']}"} for a in details for p in a["procs"]]
    tables = (apps_table(listed), procs_table(procs), instances_table(procs))
    return details, Group(*(part for t in tables for part in (t, Text(""))), footer)


async def watch(console: Console, out: Output, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    wake = asyncio.Event()
    followed: dict[str, asyncio.Task[None]] = {}

    async def follow(name: str) -> None:
        async for _ in console.subscribe(doc.APP_EVENTS, name=name, after=None):
            wake.set()

    def follow_new(names: list[str]) -> None:
        for name in names:
            if name not in followed:
                followed[name] = asyncio.create_task(follow(name))

    state, view = await _view(console, args.app)
    follow_new([args.app] if args.app else [a["name"] for a in state])
    waiter = asyncio.create_task(stop.wait())
    shown = None
    # With --json, each new state is a line of JSON instead of a redrawn table.
    live = None if out.as_json else Live(view, console=out.terminal, auto_refresh=False)
    try:
        with _keys(stop), live or contextlib.nullcontext():
            while not stop.is_set():
                if live is not None:
                    live.update(view, refresh=True)
                elif state != shown:
                    out.json(state)
                    shown = state
                woken = asyncio.create_task(wake.wait())
                await asyncio.wait(
                    {woken, waiter}, timeout=_RELIST_SECONDS, return_when="FIRST_COMPLETED"
                )
                woken.cancel()
                if stop.is_set():
                    break
                wake.clear()
                for task in followed.values():
                    if task.done():
                        task.result()  # a failed subscription ends the watch with its error
                state, view = await _view(console, args.app)
                if args.app is None:
                    follow_new([a["name"] for a in state])
    finally:
        waiter.cancel()
        for task in followed.values():
            task.cancel()
        await asyncio.gather(*followed.values(), return_exceptions=True)
    return 0
