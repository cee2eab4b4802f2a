"""deploy and rollback, and `--wait`: follow the app's events until its procs all run the
release, or the rollout stops."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from client import documents as doc
from client.errors import ClientError
from client.render import Output, app_view
from client.transport import Console
from client.verbs import fetch_app, releases_newest_first

__all__ = ["deploy", "rollback"]

# Events drive the wait; a re-read this often also covers events missed before the
# subscription started (the console sends no acknowledgement of a subscribe).
_REREAD_SECONDS = 1.0
# A process that crashes on start is RUNNING for a moment: the app counts as up once every
# instance has run its release, without a restart, for this long (Nomad's min_healthy_time).
SETTLE_SECONDS = 3.0


def _proc_progress(proc: dict[str, Any]) -> str | None:
    """None when the proc runs its release everywhere; else why it is not there yet.

    Raises ClientError(ROLLOUT_STOPPED) when it will not get there by itself.
    """
    if proc["rollout"] == "STOPPED" or proc["health"] == "FAILING":
        why = proc["lastError"] or f"health {proc['health']}"
        raise ClientError("ROLLOUT_STOPPED", f"{proc['name']}: {why}")
    if proc["type"] == "ONESHOT" or not proc["deployed"]:
        return None
    wanted = proc["metaVersion"]
    serving = [
        i for i in proc["instances"] if i["status"] == "RUNNING" and i["release"] in ("", wanted)
    ]
    if proc["rollout"] == "RUNNING" or len(serving) < proc["numInstances"]:
        return f"{proc['name']} {len(serving)}/{proc['numInstances']}"
    if len(proc["instances"]) > proc["numInstances"] or proc["runningReleases"] not in (
        [],
        [wanted],
    ):
        return f"{proc['name']} replacing old instances"
    return None


def _report_changes(out: Output, app: dict[str, Any], seen: dict[str, tuple[str, str]]) -> None:
    for proc in app["procs"]:
        for instance in proc["instances"]:
            key = f"{proc['name']}.{instance['number']}"
            now = (instance["status"], instance["release"])
            if seen.get(key) != now:
                release = f" ({instance['release']})" if instance["release"] else ""
                out.note(f"  {key} {instance['status']}{release}")
                seen[key] = now


async def wait_for_rollout(console: Console, out: Output, name: str, seconds: float) -> list[str]:
    """Follow the rollout until the app is up (returns []), or until canaries wait for a
    promotion (returns those procs' names). Raises ClientError: ROLLOUT_STOPPED, TIMEOUT."""
    seen: dict[str, tuple[str, str]] = {}
    wake = asyncio.Event()
    up_since: tuple[float, object] | None = None  # when it was first up, and its instances
    loop = asyncio.get_running_loop()

    async def follow() -> None:
        async for _ in console.subscribe(doc.APP_EVENTS, name=name, after=None):
            wake.set()

    follower = asyncio.create_task(follow())
    try:
        async with asyncio.timeout(seconds):
            while True:
                app = await fetch_app(console, name)
                _report_changes(out, app, seen)
                awaiting, waiting = rollout_standing(app)
                if awaiting and not waiting:
                    return awaiting
                if waiting:
                    up_since = None
                else:
                    restarts = [
                        (p["name"], i["number"], i["restarts"])
                        for p in app["procs"]
                        for i in p["instances"]
                    ]
                    if up_since is None or up_since[1] != restarts:
                        up_since = (loop.time(), restarts)
                    elif loop.time() - up_since[0] >= SETTLE_SECONDS:
                        return []
                if follower.done():
                    follower.result()  # a failed subscription raises here
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), _REREAD_SECONDS)
    except TimeoutError:
        raise ClientError("TIMEOUT", f"{name} is not up after {seconds:g}s") from None
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, ClientError):
            await follower


def rollout_standing(app: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The procs whose canaries wait for a promotion, and why the others are not up yet.

    A proc's canaries may wait while another proc's still start: the rollout stands still
    only when every proc either waits or is up. Raises ClientError(ROLLOUT_STOPPED).
    """
    awaiting: list[str] = []
    waiting: list[str] = []
    for proc in app["procs"]:
        if _awaits_promotion(proc):
            awaiting.append(proc["name"])
        elif (why := _proc_progress(proc)) is not None:
            waiting.append(why)
    # The app stays DEPLOYING while canaries wait; only then is that no reason to wait on.
    if app["status"] == "DEPLOYING" and not awaiting:
        waiting.append(f"{app['name']} deploying")
    return awaiting, waiting


def _awaits_promotion(proc: dict[str, Any]) -> bool:
    canary = proc.get("canary")
    return bool(canary and canary["awaitingPromotion"])


def _canary(args: argparse.Namespace) -> dict[str, Any] | None:
    """The update's CanaryInput from --canary and --auto-promote-after, or None."""
    if args.canary is None:
        if args.auto_promote_after is not None:
            raise ClientError("INVALID", "--auto-promote-after: give --canary N as well")
        return None
    if args.canary < 1:
        raise ClientError("INVALID", f"--canary: at least 1, got {args.canary}")
    return {"instances": args.canary, "autoPromoteAfter": args.auto_promote_after}


async def _apply(
    console: Console, out: Output, args: argparse.Namespace, meta_version: str | None
) -> int:
    canary = _canary(args)
    current = (await console.query(doc.APP_QUERY, name=args.name))["app"]
    if current is None or current["status"] == "UNDEPLOYED":
        if canary is not None:
            raise ClientError(
                "INVALID",
                f"--canary: {args.name} is not deployed; canaries go beside the instances "
                "of a running release",
            )
        payload = await console.mutate(doc.DEPLOY, "deployApp", name=args.name, v=meta_version)
    else:
        payload = await console.mutate(
            doc.UPDATE, "updateApp", name=args.name, v=meta_version, canary=canary
        )
    release = payload["app"]["metaVersion"]
    out.note(f"deploying {args.name} {release}")
    if args.wait:
        awaiting = await wait_for_rollout(console, out, args.name, args.timeout)
        if awaiting:
            out.note(
                f"canaries of {', '.join(awaiting)} are healthy and wait for a promotion: "
                f"lain-console promote {args.name}"
            )
        else:
            out.note(f"{args.name} runs {release}")
    final = await fetch_app(console, args.name) if args.wait else payload["app"]
    out.show(final, app_view(final))
    return 0


async def deploy(console: Console, out: Output, args: argparse.Namespace) -> int:
    return await _apply(console, out, args, args.release)


async def rollback(console: Console, out: Output, args: argparse.Namespace) -> int:
    target = args.to
    if target is None:
        app = await fetch_app(console, args.name)
        if app["status"] == "UNDEPLOYED" or not app["metaVersion"]:
            raise ClientError("CONFLICT", f"{args.name} is not deployed: nothing to roll back")
        versions = [r["metaVersion"] for r in await releases_newest_first(console, args.name)]
        if app["metaVersion"] not in versions:
            raise ClientError("CONFLICT", f"{args.name} runs {app['metaVersion']}, not a release")
        older = versions[versions.index(app["metaVersion"]) + 1 :]
        if not older:
            raise ClientError(
                "CONFLICT", f"{args.name}: no release before {app['metaVersion']} to roll back to"
            )
        target = older[0]
    return await _apply(console, out, args, target)
