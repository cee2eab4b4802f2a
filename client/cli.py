"""The client's verbs on the `lain-console` command line: arguments, dispatch, exit status."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

from client import documents as doc
from client.config import Target, checked_server, resolve_target, save_login
from client.errors import ClientError, exit_status
from client.render import Output
from client.rollout import deploy, rollback
from client.streams import events, logs
from client.transport import Console
from client.verbs import VERBS
from client.watch import watch

__all__ = ["VERB_NAMES", "add_verbs", "run"]

_HANDLERS: dict[str, Callable[..., Any]] = {
    **VERBS,
    "deploy": deploy,
    "rollback": rollback,
    "logs": logs,
    "events": events,
    "watch": watch,
}
VERB_NAMES = frozenset({*_HANDLERS, "login"})


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        help="the console's URL (default: LAIN_CONSOLE_URL, the login, or http://127.0.0.1:8000)",
    )
    common.add_argument("--token", help="API token (default: LAIN_CONSOLE_TOKEN, or the login)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def add_verbs(commands: Any) -> None:
    """Add the client's verbs to the `lain-console` subcommands."""
    common = _common()

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, parents=[common]
        )
        return parser

    verb("login", "check and store --server and --token in the config file")
    verb("apps", "list deployed apps with their health")
    verb("app", "an app's procs, instances, health and release").add_argument("name")
    verb("releases", "an app's releases, newest first").add_argument("name")

    publish = verb("publish", "publish a release (registers the app the first time)")
    publish.add_argument("name")
    publish.add_argument("--meta-version", required=True, help="<unix time>-<git sha>")
    publish.add_argument("--lain-yaml", required=True, help="the release's lain.yaml file")
    publish.add_argument("--image", help="the image (default: derived by the console)")

    for name, help_text, target in (
        ("deploy", "deploy an app, or move it to a release", "--release"),
        ("rollback", "move an app to the release before the running one", "--to"),
    ):
        parser = verb(name, help_text)
        parser.add_argument("name")
        parser.add_argument(target, dest="to" if target == "--to" else "release", metavar="V")
        parser.add_argument(
            "--wait", action="store_true", help="follow the rollout; fail if it stops"
        )
        parser.add_argument("--timeout", type=float, default=600.0, help="for --wait (s)")
        parser.add_argument(
            "--canary",
            type=int,
            metavar="N",
            help="start N new instances per proc beside the old ones first (Nomad); the "
            "rest are replaced once promoted",
        )
        parser.add_argument(
            "--auto-promote-after",
            type=int,
            metavar="S",
            help="with --canary: promote once every canary has been healthy S seconds",
        )

    promote = verb("promote", "let a canary rollout replace the other instances")
    promote.add_argument("app")
    promote.add_argument("proc", nargs="?", help="one proc (default: every proc of the app)")

    verb("undeploy", "stop and remove every proc of an app").add_argument("name")
    scale = verb("scale", "set a proc's number of instances")
    scale.add_argument("app")
    scale.add_argument("proc")
    scale.add_argument("instances", type=int, metavar="N")
    resize = verb("resize", "set a proc's cpu and memory")
    resize.add_argument("app")
    resize.add_argument("proc")
    resize.add_argument("--cpu", type=int)
    resize.add_argument("--memory", help='e.g. "256m"')
    for name in ("restart", "stop", "start"):
        action = verb(name, f"{name} a proc's instances, or one")
        action.add_argument("app")
        action.add_argument("proc")
        action.add_argument("--instance", type=int, metavar="N")

    logs_verb = verb("logs", "an app's or proc's output; -f follows")
    logs_verb.add_argument("app")
    logs_verb.add_argument("proc", nargs="?")
    logs_verb.add_argument("--instance", type=int, metavar="N")
    logs_verb.add_argument("-f", "--follow", action="store_true")
    logs_verb.add_argument("--tail", type=int, default=100, metavar="N", help="(default 100)")

    events_verb = verb("events", "an app's events; -f follows")
    events_verb.add_argument("app")
    events_verb.add_argument("-f", "--follow", action="store_true")
    events_verb.add_argument("--after", metavar="CURSOR", help="resume after this event")

    verb("watch", "a live table of procs and instances (q quits)").add_argument("app", nargs="?")

    people = verb("maintainers", "list, add or remove an app's maintainers")
    people.add_argument("app")
    people.add_argument("action", nargs="?", choices=("add", "remove"))
    people.add_argument("user", nargs="?")
    people.add_argument("--role", choices=("NORMAL", "ADMIN"), default="NORMAL")


async def _login(target: Target, out: Output) -> int:
    async with Console(target) as console:
        await console.check_token()
        viewer = (await console.query(doc.VIEWER_QUERY))["viewer"]
    path = save_login(target)
    out.show(
        {"server": target.server, "user": viewer["name"], "config": str(path)},
        f"logged in to {target.server} as {viewer['name']} (saved in {path})",
    )
    return 0


async def _run(args: argparse.Namespace, out: Output) -> int:
    if args.command == "login":
        if args.server is None:
            raise ClientError("INVALID", "login: give --server URL")
        token = resolve_target(args.server, args.token).token or args.prompted_token
        return await _login(Target(checked_server(args.server, "--server"), token), out)
    async with Console(resolve_target(args.server, args.token)) as console:
        status: int = await _HANDLERS[args.command](console, out, args)
        return status


def run(args: argparse.Namespace) -> int:
    """Run a client verb; errors print as one line and exit with their class's status."""
    out = Output(as_json=args.json)
    args.prompted_token = None
    if args.command == "login" and args.token is None and sys.stdin.isatty():
        # Asked before the event loop starts: reading the terminal blocks.
        args.prompted_token = getpass.getpass("token (empty for none): ") or None
    try:
        return asyncio.run(_run(args, out))
    except ClientError as exc:
        one_line = " ".join(part.strip() for part in exc.message.splitlines() if part.strip())
        print(f"error: {exc.code}: {one_line}", file=sys.stderr)
        return exit_status(exc.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): not an error; stop Python flushing into the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
