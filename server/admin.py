"""The CLI's user and token commands, run against the configured database."""

from __future__ import annotations

import argparse
from datetime import timedelta

from resolvers import users
from resolvers.core.context import SYSTEM, OpContext, Services
from resolvers.core.events import EventBus
from server.scheduler import make_scheduler
from server.settings import Settings
from store.engine import make_sessionmaker, open_engine

__all__ = ["run_admin"]


async def run_admin(settings: Settings, args: argparse.Namespace) -> str:
    """Carry out `user ...` or `token ...`; returns what to print. Raises DomainError."""
    async with open_engine(settings.database_url) as engine:
        # The scheduler is built but never entered: these commands only touch the database.
        services = Services(
            sessions=make_sessionmaker(engine),
            scheduler=make_scheduler(settings),
            bus=EventBus(),
        )
        ctx = OpContext(services=services, principal=SYSTEM)
        if args.command == "user":
            user = await users.add_user(ctx, name=args.name, is_admin=args.admin)
            return f"user {user.name} created{' (global admin)' if user.is_admin else ''}"
        if args.action == "create":
            lifetime = None
            if args.expires_in_days is not None:
                lifetime = timedelta(days=args.expires_in_days)
            token, secret = await users.create_token(
                ctx, user=args.name, name=args.label, expires_in=lifetime
            )
            return secret
        if args.action == "revoke":
            token = await users.revoke_token(ctx, token_id=args.id)
            return f"token {token.id} of {token.user} revoked"
        tokens = await users.list_tokens(ctx, user=args.user)
        return "\n".join(
            f"{t.id}\t{t.user}\t{t.name or '-'}\t{t.created_at:%Y-%m-%d}\t"
            f"{'revoked' if t.revoked else (t.expires_at or 'no expiry')}"
            for t in tokens
        )
