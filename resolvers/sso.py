"""Signing in through LAIN's SSO: the OAuth2 code SSO sent the browser back with, exchanged
for an access token as LAIN's console did (COMPAT 3.14)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from resolvers.core.context import OpContext
from resolvers.core.errors import Unauthenticated

__all__ = ["SSO_TIMEOUT", "SsoLogin", "exchange_code"]

log = logging.getLogger(__name__)

SSO_TIMEOUT = 5.0  # seconds; the browser is waiting on the redirect


@dataclass(frozen=True, slots=True)
class SsoLogin:
    access_token: str
    expires_in: str  # seconds, as SSO wrote them


async def exchange_code(ctx: OpContext, *, code: str) -> SsoLogin:
    """SSO's access token for `code`.

    Raises: Unauthenticated when no SSO is configured, SSO cannot be reached, or it does not
    answer 200 with an access token (LAIN's console treated all of these alike).
    """
    sso, http = ctx.services.sso, ctx.services.http
    if sso is None or http is None:
        raise Unauthenticated("no SSO is configured to exchange the code with")
    params = {
        "client_id": sso.client_id,
        "grant_type": "authorization_code",
        "client_secret": sso.client_secret,
        "code": code,
        "redirect_uri": sso.redirect_uri,
    }
    try:
        response = await http.get(
            f"{sso.url.rstrip('/')}/oauth2/token", params=params, timeout=SSO_TIMEOUT
        )
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("SSO token exchange failed: %s", exc)
        raise Unauthenticated("SSO could not be asked for a token") from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(token, str) or not token:
        log.warning("SSO refused the code: %s %s", response.status_code, response.text[:200])
        raise Unauthenticated("SSO refused the code")
    return SsoLogin(access_token=token, expires_in=str(body.get("expires_in", "")))
