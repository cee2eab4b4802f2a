"""The caller of a REST request: LAIN's `access-token` header, resolved by the server's
authenticator (the same one GraphQL uses), and LAIN's permission levels per route."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from starlette.requests import Request

from resolvers.core import access
from resolvers.core.context import ANONYMOUS, CheckedApp, OpContext, Principal, Services
from resolvers.core.credentials import token_from_headers

__all__ = ["AppStateLike", "Level", "authorize", "principal_of"]


class Level(StrEnum):
    """Who may call a route (COMPAT 1.7); the checks themselves live in resolvers.core.access."""

    NONE = "none"  # anyone, no token needed
    READ = "read"  # any valid caller
    MAINTAIN = "maintain"  # the app must exist, and the caller may touch it


class _Authenticator(Protocol):
    async def principal(self, token: str | None) -> Principal | None: ...


class AppStateLike(Protocol):
    """What the server's lifespan puts at `request.state.lain`."""

    @property
    def services(self) -> Services: ...

    @property
    def authenticator(self) -> _Authenticator: ...


async def principal_of(request: Request) -> Principal:
    """The caller. A missing or invalid token is the anonymous `unknown` user, who passes
    every check with auth off and is refused (401) by them with auth on, as in LAIN.

    The server's gate has usually decided it already for this request.
    """
    decided: Principal | None = getattr(request.state, "principal", None)
    if decided is not None:
        return decided
    state: AppStateLike = request.state.lain
    found = await state.authenticator.principal(token_from_headers(request.headers))
    return found or ANONYMOUS


async def authorize(
    ctx: OpContext, level: Level, app: str | None, *, writes: bool
) -> CheckedApp | None:
    """LAIN's permission decorator: 401, then 404 for an unregistered app, then 403.

    Returns the app when the route names one and the caller may touch it, so that the
    resolvers the handler calls do not check it again (OpContext.checked); a handler that
    `writes` reads the app afresh after its writes.

    Raises: Unauthenticated, NotFound, Forbidden.
    """
    if level is Level.NONE:
        return None
    if level is Level.READ or app is None:
        access.check_signed_in(ctx)
        return None
    return await access.checked_app(ctx, app, writes=writes)
