"""Users and API tokens. Only a digest of a token is stored; the secret is shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lainyaml import app_name_problem
from resolvers.core.context import OpContext, Principal
from resolvers.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from store.models import ApiToken, User, utcnow

__all__ = [
    "TOKEN_PREFIX",
    "TokenView",
    "UserView",
    "add_user",
    "authenticate_token",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "lct_"


@dataclass(frozen=True, slots=True)
class UserView:
    name: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    user: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


def hash_token(secret: str) -> str:
    # Tokens are 256 random bits, so a fast digest is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def _require_admin(ctx: OpContext) -> None:
    if not ctx.principal.is_admin:
        raise Forbidden("only a global admin manages users and tokens")


def _check_name(name: str) -> None:
    problem = app_name_problem(name, path="name")
    if problem is not None or "." in name:
        raise InvalidInput(
            "user names start with a letter, then letters, digits and single dashes",
            field="name",
        )


async def add_user(ctx: OpContext, *, name: str, is_admin: bool = False) -> UserView:
    """Raises: Forbidden (not a global admin), InvalidInput, Conflict."""
    _require_admin(ctx)
    _check_name(name)
    try:
        async with ctx.sessions.begin() as session:
            session.add(User(name=name, is_admin=is_admin))
    except IntegrityError:
        raise Conflict(f"user {name} already exists", field="name") from None
    return UserView(name=name, is_admin=is_admin)


async def create_token(
    ctx: OpContext, *, user: str, name: str = "", expires_in: timedelta | None = None
) -> tuple[TokenView, str]:
    """A new token for `user`: its view, and the secret, which is never stored or shown again.

    Raises: Forbidden, NotFound (no such user), InvalidInput (a non-positive lifetime).
    """
    _require_admin(ctx)
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("a token's lifetime must be positive", field="expiresIn")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with ctx.sessions.begin() as session:
        owner = (await session.execute(select(User).where(User.name == user))).scalar_one_or_none()
        if owner is None:
            raise NotFound(f"no user {user}", field="user")
        now = utcnow()
        token = ApiToken(
            user_id=owner.id,
            name=name,
            token_hash=hash_token(secret),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        session.add(token)
        await session.flush()
    return _token_view(token, user), secret


async def revoke_token(ctx: OpContext, *, token_id: int) -> TokenView:
    """Raises: Forbidden, NotFound."""
    _require_admin(ctx)
    async with ctx.sessions.begin() as session:
        row = await session.execute(
            select(ApiToken, User.name).join(User).where(ApiToken.id == token_id)
        )
        found = row.one_or_none()
        if found is None:
            raise NotFound(f"no token {token_id}", field="id")
        token, owner = found
        if token.revoked_at is None:
            token.revoked_at = utcnow()
    return _token_view(token, owner)


async def list_tokens(ctx: OpContext, *, user: str | None = None) -> list[TokenView]:
    """Raises: Forbidden."""
    _require_admin(ctx)
    query = select(ApiToken, User.name).join(User).order_by(ApiToken.id)
    if user is not None:
        query = query.where(User.name == user)
    async with ctx.sessions() as session:
        rows = (await session.execute(query)).all()
    return [_token_view(token, owner) for token, owner in rows]


async def authenticate_token(ctx: OpContext, secret: str) -> Principal | None:
    """The principal a token stands for, or None (unknown, revoked or expired)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    query = (
        select(User.name, User.is_admin, ApiToken.expires_at, ApiToken.revoked_at)
        .join(User)
        .where(ApiToken.token_hash == hash_token(secret))
    )
    async with ctx.sessions() as session:
        found = (await session.execute(query)).one_or_none()
    if found is None:
        return None
    name, is_admin, expires_at, revoked_at = found
    if revoked_at is not None or (expires_at is not None and expires_at <= utcnow()):
        return None
    return Principal(name=name, is_admin=is_admin)


def _token_view(token: ApiToken, owner: str) -> TokenView:
    return TokenView(
        id=token.id,
        user=owner,
        name=token.name,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked=token.revoked_at is not None,
    )
