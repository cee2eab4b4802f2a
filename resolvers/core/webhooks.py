"""Where the console may send webhooks (image-push notifications), and sending them.

A subscriber URL makes the console POST from inside its network, so with access control on
it must be http(s) and its host must resolve only to public addresses: loopback,
link-local (169.254.169.254 is the cloud metadata service), private, shared, reserved and
multicast addresses are refused, unless they lie in a network the operator allowed. The
check runs when a URL is added and again before every send, and the send connects to the
very address that was checked (the Host header and TLS name stay the URL's), so a name that
changes its answer in between (DNS rebinding) gains nothing. Redirects are never followed.
A name that does not resolve when it is added is accepted: it is judged when it is sent to.

With access control off everything is as LAIN had it: any string is stored, any URL is
sent to (whoever reaches such a console may deploy code as well).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from resolvers.core.errors import InvalidInput

__all__ = ["Network", "WebhookSender"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_RESOLVE_TIMEOUT = 5.0
_FIELD = "notifyUrl"


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    address: Address | None  # None: not resolvable (yet)


class WebhookSender:
    """Owned by the lifespan: one HTTP client for every webhook, and the allowed networks.

    Args:
        client: sends the POSTs; None where nothing is ever sent (tests of other things).
        allowed: networks a subscriber may resolve into although they are not public.
    """

    def __init__(
        self, client: httpx.AsyncClient | None = None, allowed: Sequence[Network] = ()
    ) -> None:
        self._client = client
        self._allowed = tuple(allowed)

    async def check(self, url: str) -> None:
        """Refuse a URL the console must not send to. Raises InvalidInput (field notifyUrl)."""
        await self._target(url, must_resolve=False)

    async def post_json(self, url: str, payload: Any, *, checked: bool) -> httpx.Response:
        """POST `payload`; with `checked`, only to a public (or allowed) address, pinned.

        Raises InvalidInput for a refused URL, httpx errors for a failed request.
        """
        if self._client is None:
            raise RuntimeError("this WebhookSender has no HTTP client; the lifespan gives one")
        if not checked:
            return await self._client.post(url, json=payload)
        target = await self._target(url, must_resolve=True)
        assert target.address is not None
        host = target.url.host
        pinned = target.url.copy_with(host=str(target.address))
        extensions = {"sni_hostname": host} if target.url.scheme == "https" else {}
        return await self._client.post(
            pinned,
            json=payload,
            headers={"Host": target.url.netloc.decode("ascii")},
            extensions=extensions,
        )

    async def _target(self, url: str, *, must_resolve: bool) -> _Target:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidInput(f"notify_url must be an http(s) URL, got {url!r}", field=_FIELD)
        addresses = await _resolve(parsed.host, parsed.port or _default_port(parsed.scheme))
        if not addresses:
            if must_resolve:
                raise InvalidInput(f"the host of {url} does not resolve", field=_FIELD)
            return _Target(parsed, None)
        for address in addresses:
            if not self._is_allowed(address):
                raise InvalidInput(
                    f"notify_url {url} resolves to {address}, which is not a public address; "
                    "an operator may allow its network (LAIN_CONSOLE_NOTIFY_ALLOW_NETWORKS)",
                    field=_FIELD,
                )
        return _Target(parsed, addresses[0])

    def _is_allowed(self, address: Address) -> bool:
        if any(address in network for network in self._allowed):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self._is_allowed(address.ipv4_mapped)
        return address.is_global and not address.is_multicast


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


async def _resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order; [] when it does not."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return []
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
