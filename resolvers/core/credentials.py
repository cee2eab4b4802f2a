"""Where a caller's token travels: the same rules for both front doors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["token_from_headers", "token_from_params"]


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """LAIN's `access-token` header, or a standard `Authorization: Bearer` one."""
    token = headers.get("access-token")
    if token:
        return token.strip() or None
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def token_from_params(params: Mapping[str, Any]) -> str | None:
    """A websocket's `connection_init` payload: `accessToken`, `token` or `Authorization`."""
    for key in ("accessToken", "access-token", "token"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    authorization = params.get("Authorization") or params.get("authorization")
    if isinstance(authorization, str):
        return token_from_headers({"authorization": authorization})
    return None
