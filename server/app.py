"""The Starlette application factory; the lifespan owns every long-lived resource."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import anyio
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from backends.base import Scheduler
from resolvers.core.context import SYSTEM, OpContext, Services, SsoSettings
from resolvers.core.events import EventBus, EventRetention
from resolvers.core.guard import OperationGuard
from resolvers.core.log_archive import DatabaseLogArchive
from resolvers.core.webhooks import WebhookSender
from resolvers.reconcile import reconcile_forever
from resolvers.watch import take_snapshots
from rest_compat import EXCEPTION_HANDLERS, PreflightMiddleware, rest_routes
from server.auth import Authenticator
from server.caller import CallerGate
from server.graphql import ControlPlaneGraphQL
from server.limits import BodySizeLimit
from server.logging import RequestIdMiddleware
from server.metered_scheduler import MeteredScheduler
from server.metrics import Metrics
from server.metrics_http import MetricsEndpoint, MetricsMiddleware, OperationMetrics
from server.readcache import ReadCache, ReadCacheMiddleware
from server.replicas import hold_local_backend, lead_when_elected
from server.scheduler import make_scheduler
from server.settings import Settings
from server.ui import ui_mount
from store.engine import check_database, make_sessionmaker, open_engine
from store.postgres import AdvisoryLocks, listen_for_events, postgres_dsn

__all__ = ["AppState", "create_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    services: Services
    authenticator: Authenticator


def create_app(settings: Settings, *, scheduler: Scheduler | None = None) -> Starlette:
    """A pure factory: nothing is opened until the lifespan runs.

    `scheduler` replaces the one the settings name (tests pass a fake); the lifespan enters it.
    """
    metrics = Metrics(app_labels=settings.metrics_app_labels) if settings.metrics else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        dsn = postgres_dsn(settings.database_url)
        async with contextlib.AsyncExitStack() as stack:
            if dsn is not None and settings.backend == "local":
                await stack.enter_async_context(hold_local_backend(dsn))
            engine = await stack.enter_async_context(open_engine(settings.database_url))
            entered = await stack.enter_async_context(
                scheduler or make_scheduler(settings, log_archive=_log_archive(engine))
            )
            # Every scheduler call the console makes is timed through this one proxy.
            opened = entered if metrics is None else MeteredScheduler(entered, metrics)
            # One client for every call out (userinfo, notify subscribers): pooled, closed at
            # shutdown; redirects are never followed.
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=5.0, follow_redirects=False)
            )
            locks = None
            if dsn is not None:
                locks = AdvisoryLocks(dsn)
                stack.push_async_callback(locks.close)
            sessions = make_sessionmaker(engine)
            bus = EventBus(
                sessions,
                retention=EventRetention(
                    count=settings.event_retention_count,
                    seconds=settings.event_retention_seconds,
                ),
                observer=metrics,
            )
            await bus.start()
            services = Services(
                sessions=sessions,
                scheduler=opened,
                bus=bus,
                registry=settings.registry,
                domains=(settings.domain,),
                timezone=settings.timezone,
                sso=_sso(settings),
                auth_enabled=settings.auth,
                webhooks=WebhookSender(http, settings.notify_allow_networks),
                guard=OperationGuard(locks),
                mutation_observer=metrics,
                http=http,
            )
            authenticator = Authenticator(
                services,
                userinfo_url=settings.auth_userinfo_url,
                cache_seconds=settings.auth_cache_seconds,
                http=http,
            )
            system = OpContext(services=services, principal=SYSTEM)
            snapshots = partial(take_snapshots, system)

            async def lead() -> None:
                async with anyio.create_task_group() as duties:
                    duties.start_soon(bus.pump, opened)
                    if settings.reconcile_interval:
                        duties.start_soon(
                            partial(
                                reconcile_forever,
                                system,
                                interval=settings.reconcile_interval,
                                on_round=metrics.reconciled if metrics is not None else None,
                            )
                        )

            async with anyio.create_task_group() as event_tasks:
                event_tasks.start_soon(bus.run, snapshots)
                if dsn is not None:
                    event_tasks.start_soon(listen_for_events, dsn, bus.wake)
                async with anyio.create_task_group() as leading:
                    if dsn is None:  # SQLite: one console, always the leader
                        leading.start_soon(lead)
                    else:
                        leading.start_soon(
                            partial(
                                lead_when_elected,
                                dsn,
                                takeover_seconds=settings.leader_takeover_seconds,
                                lead=lead,
                            )
                        )
                    log.info("lain-console ready (backend=%s)", settings.backend)
                    # What start-up built (the schema, the ORM mappers, every module) lives
                    # as long as the process: out of the collector's sight, a request's
                    # garbage no longer makes it traverse all of it (REST 55 -> 37 ms a
                    # request in-process, bench/RESULTS.md).
                    gc.collect()
                    gc.freeze()
                    yield {
                        "lain": AppState(
                            settings=settings,
                            engine=engine,
                            services=services,
                            authenticator=authenticator,
                        )
                    }
                    gc.unfreeze()  # a process that starts another app collects this one
                    leading.cancel_scope.cancel()
                # What the last requests and the scheduler published is kept, then the
                # subscriptions end.
                await bus.stop()
                event_tasks.cancel_scope.cancel()
                bus.close()
        log.info("lain-console stopped")

    def _log_archive(engine: AsyncEngine) -> DatabaseLogArchive:
        retention = timedelta(days=settings.instance_log_retention_days)
        return DatabaseLogArchive(make_sessionmaker(engine), retention=retention)

    graphql = ControlPlaneGraphQL(
        graphiql=settings.graphiql,
        recheck_seconds=settings.subscription_recheck_seconds,
        send_queue=settings.subscription_send_queue,
        graphiql_assets_url=settings.graphiql_assets_url,
        extensions=() if metrics is None else (partial(OperationMetrics, metrics),),
    )
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/graphql/schema.graphql", graphql.schema_document, methods=["GET"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            ui_mount(),
            *_metrics_routes(settings, metrics),
            *rest_routes(),
        ],
        # Metrics outermost, so that refusals (rate limits, body size) are timed too; then
        # the request id, so that a CORS preflight answered before routing has one.
        middleware=[
            *([] if metrics is None else [Middleware(MetricsMiddleware, metrics=metrics)]),
            Middleware(RequestIdMiddleware),
            Middleware(PreflightMiddleware),
            Middleware(
                CallerGate,
                per_minute=settings.rate_limit_per_minute,
                failures_per_minute=settings.auth_failures_per_minute,
            ),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
            # Innermost: it answers for the doors, after the caller is known.
            *_read_cache(settings, metrics),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )


def _metrics_routes(settings: Settings, metrics: Metrics | None) -> list[Route]:
    if metrics is None:
        return []  # switched off: /metrics is an unknown path (404)
    endpoint = MetricsEndpoint(
        metrics, auth=settings.auth, allow_networks=settings.metrics_allow_networks
    )
    return [Route("/metrics", endpoint.respond, methods=["GET"])]


def _read_cache(settings: Settings, metrics: Metrics | None) -> list[Middleware]:
    if not settings.read_cache_bytes:
        return []
    cache = ReadCache(max_bytes=settings.read_cache_bytes)
    return [Middleware(ReadCacheMiddleware, cache=cache, metrics=metrics)]


def _sso(settings: Settings) -> SsoSettings | None:
    if settings.sso_url is None:
        return None
    return SsoSettings(
        url=settings.sso_url,
        client_id=settings.sso_client_id,
        client_secret=settings.sso_client_secret,
        redirect_uri=settings.sso_redirect_uri,
        complete_url=settings.auth_complete_url,
    )


def app_state(request: Request) -> AppState:
    state: AppState = request.state.lain
    return state


async def healthz(request: Request) -> JSONResponse:
    state = app_state(request)
    problem = await check_database(state.engine)
    scheduler = await state.services.scheduler.health()
    body = {
        "status": "ok" if problem is None and scheduler.ok else "error",
        "database": problem or "ok",
        "scheduler": "ok" if scheduler.ok else scheduler.detail,
    }
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
