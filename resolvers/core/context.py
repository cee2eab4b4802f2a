"""What a resolver may touch: app-lifetime services plus the calling principal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backends.base import Scheduler
from resolvers.core.events import EventBus
from resolvers.core.guard import OperationGuard
from resolvers.core.shared_reads import WatchReads
from resolvers.core.webhooks import WebhookSender

if TYPE_CHECKING:
    import httpx

    from store.models import App, MaintainerRole


__all__ = [
    "ANONYMOUS",
    "SYSTEM",
    "CheckedApp",
    "MutationObserver",
    "OpContext",
    "Principal",
    "Services",
    "SsoSettings",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. With auth off every caller is the anonymous `unknown` user, as in LAIN."""

    name: str
    is_admin: bool = False
    authenticated: bool = True


ANONYMOUS = Principal("unknown", authenticated=False)  # LAIN's operator name without a token
SYSTEM = Principal("system", is_admin=True)  # the reconciler and other internal callers


@dataclass(frozen=True, slots=True)
class SsoSettings:
    """The console as an OAuth2 client of LAIN's SSO."""

    url: str  # SSO's base URL, e.g. http://sso.lain.local
    client_id: str
    client_secret: str
    redirect_uri: str  # where SSO sent the code: this console's /api/v1/authorize/
    complete_url: str  # the UI page that takes the token


class MutationObserver(Protocol):
    """Told each mutation's outcome (resolvers/core/outcomes.py): the metrics."""

    def mutation_finished(self, kind: str, code: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Services:
    """Owned by the server's lifespan and shared by every request."""

    sessions: async_sessionmaker[AsyncSession]
    scheduler: Scheduler
    bus: EventBus
    registry: str = "registry.lain.local"
    domains: tuple[str, ...] = ("lain.local",)
    timezone: str = "Asia/Shanghai"  # TZ of every instance, LAIN's zone unless set
    auth_enabled: bool = False
    sso: SsoSettings | None = None  # LAIN's SSO, to sign in with; None: not configured
    guard: OperationGuard = field(default_factory=OperationGuard)
    webhooks: WebhookSender = field(default_factory=WebhookSender)  # notify subscribers
    mutation_observer: MutationObserver | None = None  # metrics: each mutation's outcome
    # The subscriptions' shared reads: one snapshot and one access check per event and key.
    watch_reads: WatchReads = field(default_factory=WatchReads)
    # The app's one pooled client for calls out (SSO); never follows redirects.
    http: httpx.AsyncClient | None = None


@dataclass(frozen=True, slots=True)
class CheckedApp:
    """An app the caller may touch, as access.checked_app found it: the row, and the
    caller's maintainer role on it (None where the rule asked for none: auth off, or a
    global admin)."""

    row: App
    role: MaintainerRole | None
    # Whether the row may answer for the app until the request ends: true for a request
    # that writes nothing; a mutation's later reads must see its writes.
    row_stays_current: bool = True


@dataclass(frozen=True, slots=True)
class OpContext:
    services: Services
    principal: Principal
    # The app a front door already checked this principal against in this request (REST
    # asks first, in LAIN's order); the checks in resolvers.core.access do not ask again.
    checked: CheckedApp | None = None

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.services.sessions

    @property
    def scheduler(self) -> Scheduler:
        return self.services.scheduler
