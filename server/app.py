"""The Starlette application factory; the lifespan owns every long-lived resource."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.logging import RequestIdMiddleware
from server.settings import Settings
from store.engine import check_database, make_sessionmaker, open_engine

__all__ = ["AppState", "create_app"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


def create_app(settings: Settings) -> Starlette:
    """A pure factory: nothing is opened until the lifespan runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        async with open_engine(settings.database_url) as engine:
            state = AppState(settings=settings, engine=engine, sessions=make_sessionmaker(engine))
            log.info("lain-console ready (backend=%s)", settings.backend)
            yield {"lain": state}

    return Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"])],
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )


def app_state(request: Request) -> AppState:
    state: AppState = request.state.lain
    return state


async def healthz(request: Request) -> JSONResponse:
    problem = await check_database(app_state(request).engine)
    if problem is None:
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "error", "database": problem}, status_code=503)
