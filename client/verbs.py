"""One coroutine per request/answer verb: query or mutate, then print the result."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from client import documents as doc
from client.errors import ClientError
from client.render import Output, app_view, apps_table, instances_table, procs_table, table
from client.transport import Console

__all__ = ["VERBS", "fetch_app", "list_apps", "releases_newest_first"]


async def _pages(
    console: Console,
    document: str,
    path: Callable[[dict[str, Any]], dict[str, Any] | None],
    **v: Any,
) -> AsyncIterator[dict[str, Any]]:
    """Every node of a paged connection, following `endCursor`."""
    after: str | None = None
    while True:
        connection = path(await console.query(document, after=after, **v))
        if connection is None:
            return
        for node in connection["nodes"]:
            yield node
        if not connection["pageInfo"]["hasNextPage"]:
            return
        after = connection["pageInfo"]["endCursor"]


async def fetch_app(console: Console, name: str) -> dict[str, Any]:
    app: dict[str, Any] | None = (await console.query(doc.APP_QUERY, name=name))["app"]
    if app is None:
        raise ClientError("NOT_FOUND", f"app {name!r} does not exist")
    return app


async def releases_newest_first(console: Console, name: str) -> list[dict[str, Any]]:
    def connection(data: dict[str, Any]) -> dict[str, Any]:
        if data["repo"] is None:
            raise ClientError("NOT_FOUND", f"app {name!r} is not registered")
        found: dict[str, Any] = data["repo"]["releases"]
        return found

    return [node async for node in _pages(console, doc.RELEASES_QUERY, connection, name=name)]


async def list_apps(console: Console) -> list[dict[str, Any]]:
    return [a async for a in _pages(console, doc.APPS_QUERY, lambda data: data["apps"])]


async def apps(console: Console, out: Output, args: argparse.Namespace) -> int:
    found = await list_apps(console)
    out.show(found, apps_table(found))
    return 0


async def app(console: Console, out: Output, args: argparse.Namespace) -> int:
    found = await fetch_app(console, args.name)
    out.show(found, app_view(found))
    return 0


async def releases(console: Console, out: Output, args: argparse.Namespace) -> int:
    found = await releases_newest_first(console, args.name)
    running = (await console.query(doc.RELEASES_QUERY, name=args.name))["repo"]["app"]
    current = running["metaVersion"] if running and running["status"] != "UNDEPLOYED" else None
    for release in found:
        release["running"] = release["metaVersion"] == current
    rows = (
        ("*" if r["running"] else "", r["metaVersion"], r["createdAt"], r["image"]) for r in found
    )
    out.show(found, table(("", "RELEASE", "CREATED", "IMAGE"), rows))
    return 0


async def publish(console: Console, out: Output, args: argparse.Namespace) -> int:
    try:
        lain_yaml = await asyncio.to_thread(Path(args.lain_yaml).read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientError("INVALID", f"--lain-yaml: cannot read {args.lain_yaml}: {exc}") from None
    variables = {"app": args.name, "v": args.meta_version, "yaml": lain_yaml, "image": args.image}
    try:
        payload = await console.mutate(doc.PUBLISH, "publishRelease", **variables)
    except ClientError as exc:
        if exc.code != "NOT_FOUND":
            raise
        # A first release registers the app, as `lain reposit` did before the first push.
        await console.mutate(doc.REGISTER, "registerRepo", name=args.name)
        out.note(f"registered {args.name}")
        payload = await console.mutate(doc.PUBLISH, "publishRelease", **variables)
    release = payload["release"]
    image = f" ({release['image']})" if release["image"] else ""
    out.show(release, f"published {args.name} {release['metaVersion']}{image}")
    return 0


async def undeploy(console: Console, out: Output, args: argparse.Namespace) -> int:
    payload = await console.mutate(doc.UNDEPLOY, "undeployApp", name=args.name)
    out.show(payload["app"], f"undeployed {args.name}")
    return 0


def _show_proc(out: Output, proc: dict[str, Any], what: str) -> None:
    out.show(proc, procs_table([proc]))
    out.note(what)


async def scale(console: Console, out: Output, args: argparse.Namespace) -> int:
    if args.instances < 0:
        raise ClientError("INVALID", f"N: must be 0 or more, got {args.instances}")
    payload = await console.mutate(
        doc.SCALE, "scaleProc", app=args.app, proc=args.proc, n=args.instances
    )
    _show_proc(out, payload["proc"], f"scaled {args.app}.{args.proc} to {args.instances}")
    return 0


async def promote(console: Console, out: Output, args: argparse.Namespace) -> int:
    """Promote the canaries of the app's procs, or of one proc: what `deploy --canary N
    --wait` stops and waits for."""
    replaced = "its other instances are being replaced"
    if args.proc is None:
        app = (await console.mutate(doc.PROMOTE_APP, "promoteApp", name=args.app))["app"]
        out.show(app, app_view(app))
        out.note(f"promoted the canaries of {args.app}; {replaced}")
    else:
        payload = await console.mutate(
            doc.PROMOTE_PROC, "promoteProc", app=args.app, proc=args.proc
        )
        _show_proc(
            out, payload["proc"], f"promoted the canaries of {args.app}.{args.proc}; {replaced}"
        )
    return 0


async def resize(console: Console, out: Output, args: argparse.Namespace) -> int:
    if args.cpu is None and args.memory is None:
        raise ClientError("INVALID", "resize: give --cpu, --memory or both")
    payload = await console.mutate(
        doc.RESIZE, "resizeProc", app=args.app, proc=args.proc, cpu=args.cpu, memory=args.memory
    )
    _show_proc(out, payload["proc"], f"resized {args.app}.{args.proc}")
    return 0


def _instance_verb(mutation: str, done: str) -> Callable[..., Any]:
    async def verb(console: Console, out: Output, args: argparse.Namespace) -> int:
        payload = await console.mutate(
            doc.instance_action(mutation), mutation, app=args.app, proc=args.proc, n=args.instance
        )
        which = f" instance {args.instance}" if args.instance is not None else ""
        proc = payload["proc"]
        out.show(proc, instances_table([proc], app=args.app))
        out.note(f"{done} {args.app}.{args.proc}{which}")
        return 0

    return verb


async def maintainers(console: Console, out: Output, args: argparse.Namespace) -> int:
    if args.action is not None and args.user is None:
        raise ClientError("INVALID", f"maintainers {args.action}: give the USER")
    if args.action == "add":
        await console.mutate(
            doc.ADD_MAINTAINER, "addMaintainer", app=args.app, user=args.user, role=args.role
        )
        out.note(f"{args.user} maintains {args.app} ({args.role})")
    elif args.action == "remove":
        await console.mutate(
            doc.REMOVE_MAINTAINER, "removeMaintainer", app=args.app, user=args.user
        )
        out.note(f"{args.user} no longer maintains {args.app}")
    found = (await console.query(doc.MAINTAINERS_QUERY, name=args.app))["app"]
    if found is None:
        raise ClientError("NOT_FOUND", f"app {args.app!r} does not exist")
    people = found["maintainers"]
    out.show(people, table(("USER", "ROLE"), ((m["username"], m["role"]) for m in people)))
    return 0


VERBS: dict[str, Callable[..., Any]] = {
    "apps": apps,
    "app": app,
    "releases": releases,
    "publish": publish,
    "undeploy": undeploy,
    "scale": scale,
    "resize": resize,
    "promote": promote,
    "restart": _instance_verb("restartProc", "restarting"),
    "stop": _instance_verb("stopProc", "stopping"),
    "start": _instance_verb("startProc", "starting"),
    "maintainers": maintainers,
}
