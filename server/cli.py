"""The `lain-console` command: serve, migrate, user and token administration, and the
client's verbs (see client/), which talk to a console over its public API."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace

from client.cli import VERB_NAMES, add_verbs
from client.cli import run as run_client_verb
from resolvers.core.errors import DomainError
from server.datadir import DataDirInUse, hold_data_dir, hold_sqlite_database
from server.listen import CannotListen, bind, serve
from server.replicas import ReplicaRefused
from server.settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lain-console", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations and start the server")
    serve.add_argument("--host", help="bind address (default: LAIN_CONSOLE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: LAIN_CONSOLE_PORT or 8000)")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not apply migrations before starting"
    )

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True
    )
    add = user.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="a global admin: may act on every app")

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    create = token.add_parser("create", help="create a token for a user; printed once")
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--label", default="", help="what the token is for")
    create.add_argument("--expires-in-days", type=int, help="lifetime; no expiry by default")
    revoke = token.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    listing = token.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--user", help="only this user's tokens")
    add_verbs(commands)
    return parser


def _prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the console's alone


def _migrate(settings: Settings, revision: str = "head") -> None:
    from store.migrate import upgrade

    _prepare_data_dir(settings)
    upgrade(settings.database_url, revision)


def _needs_data_dir_lock(settings: Settings) -> bool:
    # On PostgreSQL with Nomad any number of consoles serve together (see DESIGN, replicas).
    return settings.backend == "local" or settings.database_url.startswith("sqlite")


def _refuse_a_second_local_console(settings: Settings) -> None:
    """Raises ReplicaRefused, with a message rather than a traceback from the lifespan
    (which takes the same lock for the console's lifetime)."""
    from server.replicas import local_backend_free
    from store.postgres import postgres_dsn

    dsn = postgres_dsn(settings.database_url)
    if settings.backend == "local" and dsn is not None:
        asyncio.run(local_backend_free(dsn))


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    from server.app import create_app
    from server.collector import tune_collector
    from server.logging import configure_logging
    from server.scheduler import check_isolation

    if args.host:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise SettingsError(f"--port must be between 1 and 65535, got {args.port}")
        settings = replace(settings, port=args.port)
    configure_logging(settings.log_level, settings.log_format)
    check_isolation(settings)  # also in the lifespan; here it stops with a message, not a trace
    claim = hold_data_dir(settings.data_dir) if _needs_data_dir_lock(settings) else nullcontext()
    # The lock and the socket come first: a console that cannot serve must not migrate,
    # adopt processes or reconcile anything.
    with (
        claim,
        hold_sqlite_database(settings.database_url),
        bind(settings.host, settings.port) as sock,
    ):
        _refuse_a_second_local_console(settings)
        if not args.no_migrate:
            _migrate(settings)
        _prepare_data_dir(settings)
        app = create_app(settings)
        tune_collector()
        serve(app, sock, settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in VERB_NAMES:
        return run_client_verb(args)  # a client of some console: this one's settings don't apply
    try:
        settings = load_settings()
        if args.command == "migrate":
            _migrate(settings, args.revision)
        elif args.command == "serve":
            _serve(settings, args)
        else:
            from server.admin import run_admin

            _migrate(settings)
            print(asyncio.run(run_admin(settings, args)))
    except SettingsError as exc:
        print(f"lain-console: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"lain-console: {exc.message}", file=sys.stderr)
        return 1
    except (DataDirInUse, CannotListen, ReplicaRefused) as exc:
        print(f"lain-console: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
