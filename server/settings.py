"""Settings from the environment, read once in `server/` and passed down."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from backends.local.isolation import DEFAULT_APP_UIDS
from resolvers.core.webhooks import Network
from server.graphiql import DEFAULT_ASSETS_URL

__all__ = ["Settings", "SettingsError", "load_settings"]

Backend = Literal["local", "nomad"]
LogFormat = Literal["json", "text"]

_PREFIX = "LAIN_CONSOLE_"
_N = TypeVar("_N", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# What a TZ variable holds: a zone name (Asia/Shanghai) or a POSIX rule (CST-8, <+08>-8).
_TZ = re.compile(r"[A-Za-z0-9_+\-/:.,<>]+")
# A mirror of unpkg.com: another server, or a path on this one; it goes into HTML attributes.
_ASSETS_URL = re.compile(r"(https?://[^\s\"'<>`]+|/[^\s\"'<>`]*)")
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to setresuid


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable and the rule."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    backend: Backend = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    registry: str = "registry.lain.local"
    domain: str = "lain.local"
    timezone: str = "Asia/Shanghai"
    graphiql: bool = True
    # Where GraphiQL's page loads React and GraphiQL from: unpkg.com, or a mirror of it.
    graphiql_assets_url: str = DEFAULT_ASSETS_URL
    auth: bool = False
    auth_userinfo_url: str | None = None
    auth_cache_seconds: int = 60
    max_body_bytes: int = 2 * 1024 * 1024
    rate_limit_per_minute: int = 1200
    # Requests a minute from one address that carry a token we could not accept (guessing).
    auth_failures_per_minute: int = 30
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed; none by default.
    forwarded_allow_ips: tuple[str, ...] = ()
    # How often an open subscription re-checks its caller's token and access to the app.
    subscription_recheck_seconds: float = 30.0
    # Event frames waiting to be written to one websocket before it is closed as too slow.
    subscription_send_queue: int = 256
    reconcile_interval: int = 30
    local_stop_on_exit: bool = False
    # LAIN's SSO as an OAuth2 provider for /api/v1/authorize/ (all four, or no SSO).
    sso_url: str | None = None
    sso_client_id: str = ""
    sso_client_secret: str = ""
    sso_redirect_uri: str = ""
    auth_complete_url: str = ""
    local_app_uids: range = DEFAULT_APP_UIDS
    local_allow_unisolated: bool = False
    notify_allow_networks: tuple[Network, ...] = ()
    max_connections: int = 1000
    header_timeout: int = 10
    # Rollouts on the local backend: how long a new instance must stay up (its health check
    # passed) before it replaces an old one, and how long to wait for that before stopping.
    min_healthy_time: int = 3
    rollout_timeout: int = 60
    local_health_interval: float = 10.0
    # Instance output (local backend): journal cap and generations per stream and
    # instance, retention of what gone instances printed, and each follower's buffer.
    instance_log_max_bytes: int = 10 * 1024 * 1024
    instance_log_files: int = 3
    instance_log_retention_days: int = 7
    instance_log_retention_bytes: int = 1024 * 1024 * 1024
    log_follow_buffer_lines: int = 10_000
    event_retention_count: int = 100_000
    event_retention_seconds: int = 7 * 24 * 3600
    leader_takeover_seconds: int = 10
    # Prometheus metrics at /metrics; with auth on, for global admins and these networks.
    metrics: bool = True
    metrics_allow_networks: tuple[Network, ...] = ()
    # App names as a label (rollouts): bounded by the number of apps, off by default.
    metrics_app_labels: bool = False
    # Rendered answers of repeated reads (REST GETs, GraphQL queries), least recently used
    # dropped past this many bytes; 0 switches the cache (and its ETags) off.
    read_cache_bytes: int = 64 * 1024 * 1024

    @property
    def default_database_url(self) -> str:
        return _sqlite_url(self.data_dir)


def _sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'lain-console.db').resolve()}"


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read `LAIN_CONSOLE_*` variables; raises SettingsError naming the bad variable."""
    reader = _Reader(environ)
    # Absolute once, here: the local backend's processes change into their own directories
    # and must still find the data dir's files, and a relative path would also move with
    # whatever directory the console happens to run in.
    data_dir = Path(os.path.abspath(Path(reader.text("DATA_DIR", ".lain-console")).expanduser()))
    domain = reader.text("DOMAIN", "lain.local")
    settings = Settings(
        data_dir=data_dir,
        database_url=reader.text("DATABASE_URL", _sqlite_url(data_dir)),
        backend=reader.choice("BACKEND", ("local", "nomad"), "local"),  # type: ignore[arg-type]  # one of those
        host=reader.text("HOST", "127.0.0.1"),
        port=reader.integer("PORT", 8000, low=1, high=65535),
        log_level=reader.choice(
            "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True
        ),
        log_format=reader.choice("LOG_FORMAT", ("json", "text"), "text"),  # type: ignore[arg-type]  # one of those
        registry=reader.text("REGISTRY", "registry.lain.local"),
        domain=domain,
        timezone=reader.text("TIMEZONE", "Asia/Shanghai"),
        graphiql=reader.flag("GRAPHIQL", True),
        graphiql_assets_url=reader.text("GRAPHIQL_ASSETS_URL", DEFAULT_ASSETS_URL),
        auth=reader.flag("AUTH", False),
        auth_userinfo_url=reader.text("AUTH_USERINFO_URL", "") or None,
        auth_cache_seconds=reader.integer("AUTH_CACHE_SECONDS", 60, low=0, high=3600),
        max_body_bytes=reader.integer(
            "MAX_BODY_BYTES", 2 * 1024 * 1024, low=1024, high=64 * 1024 * 1024
        ),
        rate_limit_per_minute=reader.integer("RATE_LIMIT_PER_MINUTE", 1200, low=0, high=10**7),
        auth_failures_per_minute=reader.integer("AUTH_FAILURES_PER_MINUTE", 30, low=0, high=10**7),
        forwarded_allow_ips=reader.addresses("FORWARDED_ALLOW_IPS"),
        subscription_recheck_seconds=reader.number(
            "SUBSCRIPTION_RECHECK_SECONDS", 30.0, low=0.05, high=30.0
        ),
        subscription_send_queue=reader.integer("SUBSCRIPTION_SEND_QUEUE", 256, low=1, high=100_000),
        reconcile_interval=reader.integer("RECONCILE_INTERVAL", 30, low=0, high=86400),
        local_stop_on_exit=reader.flag("LOCAL_STOP_ON_EXIT", False),
        sso_url=reader.text("SSO_URL", "") or None,
        sso_client_id=reader.text("SSO_CLIENT_ID", ""),
        sso_client_secret=reader.text("SSO_CLIENT_SECRET", ""),
        # LAIN's defaults: the console's own authorize URL and archon's page.
        sso_redirect_uri=reader.text(
            "SSO_REDIRECT_URI", f"http://console.{domain}/api/v1/authorize/"
        ),
        auth_complete_url=reader.text(
            "AUTH_COMPLETE_URL", f"http://archon.{domain}/authorize/complete"
        ),
        local_app_uids=reader.id_range("LOCAL_APP_UIDS", DEFAULT_APP_UIDS),
        local_allow_unisolated=reader.flag("LOCAL_ALLOW_UNISOLATED", False),
        notify_allow_networks=reader.networks("NOTIFY_ALLOW_NETWORKS"),
        max_connections=reader.integer("MAX_CONNECTIONS", 1000, low=10, high=1_000_000),
        header_timeout=reader.integer("HEADER_TIMEOUT", 10, low=1, high=3600),
        min_healthy_time=reader.integer("MIN_HEALTHY_TIME", 3, low=0, high=3600),
        rollout_timeout=reader.integer("ROLLOUT_TIMEOUT", 60, low=1, high=86400),
        local_health_interval=reader.number("LOCAL_HEALTH_INTERVAL", 10.0, low=0.1, high=3600),
        instance_log_max_bytes=reader.integer(
            "INSTANCE_LOG_MAX_BYTES", 10 * 1024 * 1024, low=4096, high=1024**4
        ),
        instance_log_files=reader.integer("INSTANCE_LOG_FILES", 3, low=1, high=100),
        instance_log_retention_days=reader.integer(
            "INSTANCE_LOG_RETENTION_DAYS", 7, low=1, high=3650
        ),
        instance_log_retention_bytes=reader.integer(
            "INSTANCE_LOG_RETENTION_BYTES", 1024**3, low=1024 * 1024, high=1024**5
        ),
        log_follow_buffer_lines=reader.integer(
            "LOG_FOLLOW_BUFFER_LINES", 10_000, low=10, high=1_000_000
        ),
        event_retention_count=reader.integer("EVENT_RETENTION_COUNT", 100_000, low=100, high=10**9),
        event_retention_seconds=reader.integer(
            "EVENT_RETENTION_SECONDS", 7 * 24 * 3600, low=60, high=10 * 365 * 24 * 3600
        ),
        leader_takeover_seconds=reader.integer("LEADER_TAKEOVER_SECONDS", 10, low=2, high=600),
        metrics=reader.flag("METRICS", True),
        metrics_allow_networks=reader.networks("METRICS_ALLOW_NETWORKS"),
        metrics_app_labels=reader.flag("METRICS_APP_LABELS", False),
        read_cache_bytes=reader.integer("READ_CACHE_BYTES", 64 * 1024 * 1024, low=0, high=1024**4),
    )
    _check_sso(settings)
    if settings.auth_userinfo_url is not None and not settings.auth_userinfo_url.startswith(
        ("https://", "http://")
    ):
        raise SettingsError(
            f"{_PREFIX}AUTH_USERINFO_URL must be an http(s) URL, got {settings.auth_userinfo_url!r}"
        )
    if not _ASSETS_URL.fullmatch(settings.graphiql_assets_url):
        raise SettingsError(
            f"{_PREFIX}GRAPHIQL_ASSETS_URL must be an http(s) URL or a path starting with /, "
            f"without spaces, quotes or angle brackets, got {settings.graphiql_assets_url!r}"
        )
    if not _TZ.fullmatch(settings.timezone):
        raise SettingsError(
            f"{_PREFIX}TIMEZONE must be a TZ value such as Asia/Shanghai or UTC, "
            f"got {settings.timezone!r}"
        )
    if not settings.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            f"{_PREFIX}DATABASE_URL must start with sqlite+aiosqlite:// or "
            f"postgresql+asyncpg://, got {_redact(settings.database_url)!r}"
        )
    return settings


def _check_sso(settings: Settings) -> None:
    urls = {"SSO_URL": settings.sso_url or "", "SSO_REDIRECT_URI": settings.sso_redirect_uri}
    urls["AUTH_COMPLETE_URL"] = settings.auth_complete_url
    for name, url in urls.items():
        if url and not url.startswith(("https://", "http://")):
            raise SettingsError(f"{_PREFIX}{name} must be an http(s) URL, got {url!r}")
    if settings.sso_url is not None:
        for name in ("SSO_CLIENT_ID", "SSO_CLIENT_SECRET"):
            if not getattr(settings, name.lower()):
                raise SettingsError(f"{_PREFIX}{name} must be set when {_PREFIX}SSO_URL is")


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        value = self._environ.get(_PREFIX + name, "").strip()
        return value or default

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        return self._bounded(name, int, "an integer", default, low, high)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        return self._bounded(name, float, "a number", default, low, high)

    def _bounded(
        self, name: str, kind: Callable[[str], _N], what: str, default: _N, low: _N, high: _N
    ) -> _N:
        raw = self.text(name, str(default))
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{_PREFIX}{name} must be {what}, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{_PREFIX}{name} must be between {low} and {high}, got {value}")
        return value

    def addresses(self, name: str) -> tuple[str, ...]:
        """Comma-separated IP addresses or networks (`10.0.0.0/8`), or `*` for any."""
        items = tuple(item.strip() for item in self.text(name, "").split(",") if item.strip())
        for item in items:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise SettingsError(
                    f"{_PREFIX}{name} must list IP addresses or networks (or *), got {item!r}"
                ) from None
        return items

    def choice(
        self, name: str, allowed: tuple[str, ...], default: str, *, upper: bool = False
    ) -> str:
        raw = self.text(name, default)
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise SettingsError(f"{_PREFIX}{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    def id_range(self, name: str, default: range) -> range:
        """`first-last`, both included: user and group ids no person or system account uses."""
        raw = self.text(name, f"{default.start}-{default.stop - 1}")
        first, sep, last = raw.partition("-")
        try:
            low, high = int(first), int(last)
        except ValueError:
            low, high = 0, -1
        if not sep or not 1000 <= low <= high <= _MAX_ID:
            raise SettingsError(
                f"{_PREFIX}{name} must be a range first-last with 1000 <= first <= last <= "
                f"{_MAX_ID}, got {raw!r}"
            )
        return range(low, high + 1)

    def networks(self, name: str) -> tuple[Network, ...]:
        """Comma-separated addresses or CIDR networks (10.0.0.0/8, 192.0.2.7, fd00::/8)."""
        found: list[Network] = []
        for item in self.text(name, "").split(","):
            if not item.strip():
                continue
            try:
                found.append(ipaddress.ip_network(item.strip()))
            except ValueError as exc:
                raise SettingsError(
                    f"{_PREFIX}{name} must list addresses or networks like 10.0.0.0/8, "
                    f"separated by commas: {exc}"
                ) from None
        return tuple(found)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name, "true" if default else "false").lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{_PREFIX}{name} must be true or false, got {raw!r}")
