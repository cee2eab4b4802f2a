"""Turning credentials into a principal: built-in API tokens, or an external userinfo URL."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

import httpx

from resolvers.core.context import ANONYMOUS, SYSTEM, OpContext, Principal, Services
from resolvers.core.errors import BackendUnavailable
from resolvers.users import TOKEN_PREFIX, authenticate_token

__all__ = ["AuthUnavailable", "Authenticator"]

log = logging.getLogger(__name__)

_CACHE_SIZE = 10_000


class AuthUnavailable(BackendUnavailable):
    """The userinfo URL could not say whether a token is valid (down, slow, or answering
    5xx): the request cannot be authenticated now, which is not the same as a bad token."""


class Authenticator:
    """Resolves a token to a principal; `None` means the token is not valid.

    With auth off everyone is LAIN's anonymous `unknown` operator. With auth on, a token is
    checked against our own API tokens first, then (when configured) against a userinfo URL
    such as LAIN SSO's `/api/me/` or an OIDC userinfo endpoint, whose answers are cached
    briefly so that a dashboard's burst of requests costs one round trip.

    A token in our own format (`lct_…`) is never sent out, whether it is valid or not: a
    revoked or mistyped one would otherwise hand a console credential to another service.
    `http` is the client owned by the app's lifespan; it is required with a userinfo URL.
    """

    def __init__(
        self,
        services: Services,
        *,
        userinfo_url: str | None = None,
        cache_seconds: float = 60.0,
        http: httpx.AsyncClient | None = None,
        admin_group: str = "lain",
    ) -> None:
        if userinfo_url is not None and http is None:
            raise ValueError("a userinfo URL needs the lifespan's shared http client")
        self._ctx = OpContext(services=services, principal=SYSTEM)
        self._enabled = services.auth_enabled
        self._userinfo_url = userinfo_url
        self._cache_seconds = cache_seconds
        self._http = http
        self._admin_group = admin_group
        # Keyed by a digest so that no token sits in memory longer than its request needs.
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def principal(self, token: str | None) -> Principal | None:
        """The caller; ANONYMOUS when no token was given, None for a token that is not valid.

        Raises: AuthUnavailable, when the userinfo URL cannot answer for a token now.
        """
        if not self._enabled:
            return ANONYMOUS
        if token is None:
            return ANONYMOUS
        if token.startswith(TOKEN_PREFIX):
            return await authenticate_token(self._ctx, token)
        if self._userinfo_url is None:
            return None
        return await self._external(token)

    async def _external(self, token: str) -> Principal | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        principal = await self._ask_userinfo(token)  # an outage raises: nothing is cached
        self._cache[key] = (now + self._cache_seconds, principal)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    async def _ask_userinfo(self, token: str) -> Principal | None:
        assert self._userinfo_url is not None
        assert self._http is not None
        try:
            response = await self._http.get(
                self._userinfo_url, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            log.warning("userinfo request failed: %s", type(exc).__name__)
            raise AuthUnavailable("the userinfo service cannot be reached; try again") from None
        if response.status_code >= 500 or response.status_code == 429:
            log.warning("userinfo answered %s", response.status_code)
            raise AuthUnavailable(
                f"the userinfo service answered {response.status_code}; try again"
            )
        if response.status_code != 200:
            return None
        try:
            info = response.json()
        except ValueError:
            log.warning("userinfo answered 200 without JSON")
            raise AuthUnavailable("the userinfo service answered without JSON") from None
        if not isinstance(info, dict):
            return None
        # LAIN SSO's /api/me/ says `name`; OIDC userinfo says `preferred_username` or `sub`.
        name = info.get("name") or info.get("preferred_username") or info.get("sub")
        if not isinstance(name, str) or not name:
            return None
        groups = info.get("groups") or []
        is_admin = isinstance(groups, list) and self._admin_group in groups
        return Principal(name=name, is_admin=is_admin)
