"""Human tables (rich) and JSON for scripts: what each verb prints."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console as Terminal
from rich.console import Group
from rich.table import Table
from rich.text import Text

__all__ = ["Output", "app_view", "apps_table", "instances_table", "procs_table", "table"]

_HEALTH_STYLE = {
    "HEALTHY": "green",
    "DEGRADED": "yellow",
    "ROLLING": "cyan",
    "FAILING": "bold red",
    "STOPPED": "dim",
}


def _cell(value: Any) -> Text:
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    text = str(value)
    return Text(text, style=_HEALTH_STYLE.get(text, ""))


# Ids people copy from a table: shown whole; the other columns give way (folded).
_WHOLE = frozenset({"RELEASE", "RELEASES"})


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    cells = [[_cell(value) for value in row] for row in rows]
    grid = Table(title=title, title_justify="left", box=None, header_style="bold")
    for index, name in enumerate(columns):
        if name in _WHOLE:
            widest = max((len(row[index]) for row in cells), default=0)
            grid.add_column(name, no_wrap=True, min_width=max(widest, len(name)))
        else:
            grid.add_column(name, overflow="fold")  # never cut with an ellipsis
    for row in cells:
        grid.add_row(*row)
    return grid


def short_release(meta_version: str) -> str:
    """`<timestamp>-<sha>` with the sha cut to 7, as git shows commits; whole ids are in the
    app's summary line, `releases` and `--json`."""
    stamp, dash, sha = meta_version.partition("-")
    return f"{stamp}{dash}{sha[:7]}" if dash else meta_version


def apps_table(apps: Sequence[dict[str, Any]]) -> Table:
    return table(
        ("APP", "TYPE", "STATUS", "HEALTH", "RELEASE"),
        ((a["name"], a["apptype"], a["status"], a["health"], a["metaVersion"]) for a in apps),
    )


def procs_table(procs: Sequence[dict[str, Any]]) -> Table:
    def running(proc: dict[str, Any]) -> str:
        up = sum(1 for i in proc["instances"] if i["status"] == "RUNNING")
        return f"{up}/{proc['numInstances']}"

    return table(
        ("PROC", "TYPE", "RUNNING", "CPU", "MEMORY", "HEALTH", "ROLLOUT", "RELEASES"),
        (
            (
                p["name"],
                p["type"],
                running(p),
                p["cpu"],
                p["memory"],
                p["health"],
                p["rollout"],
                ", ".join(short_release(r) for r in p["runningReleases"]) or None,
            )
            for p in procs
        ),
    )


def instances_table(procs: Sequence[dict[str, Any]], app: str | None = None) -> Table:
    prefix = f"{app}." if app else ""
    return table(
        ("INSTANCE", "STATUS", "HEALTHY", "RELEASE", "RESTARTS", "ADDRESS", "ERROR"),
        (
            (
                f"{prefix}{p['name']}.{i['number']}",
                i["status"],
                i["healthy"],
                short_release(i["release"]) or None,
                i["restarts"],
                f"{i['ip']}:{i['port']}" if i["ip"] and i["port"] else i["ip"],
                i["lastError"] or None,
            )
            for p in procs
            for i in p["instances"]
        ),
    )


def app_view(app: dict[str, Any]) -> Group:
    """An app as `app NAME` and `watch NAME` show it: a summary line, procs, instances."""
    summary = Text.assemble(
        (app["name"], "bold"),
        f"  {app['status']}  ",
        _cell(app["health"]),
        f"\nrelease {app['metaVersion'] or '-'}",
    )
    parts: list[Any] = [summary]
    if app["deployError"]:
        parts.append(Text(f"error: {app['deployError']}", style="red"))
    parts += [
        Text(canary_line(app["name"], p), style="cyan") for p in app["procs"] if p.get("canary")
    ]
    parts += [Text(""), procs_table(app["procs"]), Text(""), instances_table(app["procs"])]
    return Group(*parts)


def canary_line(app: str, proc: dict[str, Any]) -> str:
    """Where a proc's canary rollout stands, in one line."""
    canary = proc["canary"]
    state = f"{canary['healthy']}/{canary['desired']} healthy"
    if canary["promoted"]:
        state += ", promoted: replacing the other instances"
    elif canary["awaitingPromotion"]:
        state += f", waiting for a promotion (lain-console promote {app} {proc['name']})"
    elif canary["autoPromote"]:
        state += ", promoted by itself once all are healthy"
    return f"canaries of {proc['name']}: {state}"


# Piped into grep or awk, a table keeps each row on one line instead of folding it at
# rich's default of 80 columns.
_PIPED_WIDTH = 1000


def _width(stream: TextIO) -> int | None:
    """None (rich asks the terminal, or reads COLUMNS when it is set), or _PIPED_WIDTH when
    the output is not a terminal and COLUMNS does not say."""
    return None if stream.isatty() or os.environ.get("COLUMNS") else _PIPED_WIDTH


class Output:
    """Where a verb's result goes: a table for people, or JSON with `--json`."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.terminal = Terminal(highlight=False, width=_width(sys.stdout))
        self.progress = Terminal(stderr=True, highlight=False, width=_width(sys.stderr))

    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def show(self, value: Any, human: Any) -> None:
        """`value` as JSON with --json, else the human rendering (a rich renderable or text)."""
        if self.as_json:
            self.json(value)
        else:
            self.terminal.print(human, soft_wrap=isinstance(human, str))

    def note(self, message: str) -> None:
        """Progress and warnings: on stderr, so stdout stays the result."""
        self.progress.print(message, soft_wrap=True)
