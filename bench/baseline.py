"""The baseline: a bare Starlette app whose handlers return the same JSON as the product.

`GET /api/v1/apps/` returns the bytes the REST layer returns; `POST /graphql` answers the
benchmark's one query (`APPS_QUERY`) with the `data` the GraphQL layer returns. Each handler
reads the same rows with plain SQLAlchemy Core (two queries: apps joined to their release,
then their procs), the running state from the same in-memory scheduler, and builds dicts
straight into `json.dumps`: no framework layers, no view objects, no field resolution. It is
what a hand-written endpoint costs, and it only knows the benchmark's data (apps without
portals, services or resources; it refuses others).

Two pure helpers of the product are reused because re-deriving them is not the point:
`spec.parse_lain_yaml` (memoised per release text, as the product memoises it) turns the
stored lain.yaml into proc specs, and `rest_compat.py2.dict_order` gives the Python 2 key
order of each object shape once, at import.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backends.types import InstanceState, InstanceStatus, ProcState
from bench.scheduler import LoadedScheduler
from lainyaml import LainConfig, ProcSpec, format_memory, parse_lain_yaml
from rest_compat.py2 import dict_order
from store.engine import open_engine
from store.models import App, Proc, Release

__all__ = ["APPS_QUERY", "create_baseline"]

APPS_QUERY = (
    "query Apps { apps { nodes { name status metaVersion procs { name type numInstances "
    "cpu memory image instances { number status healthy ip port } } } } }"
)
_PAGE = 100  # the GraphQL connection's largest (and default) page
_DOMAINS = ("lain.local",)
_REGISTRY = "registry.lain.local"
_SHANGHAI = timezone(timedelta(hours=8))
_GO_ZERO_TIME = "0001-01-01 00:00:00Z"

# The console's insertion order of each object, replayed once into Python 2.7's order.
_ENVELOPE = dict_order(["apps", "msg", "url"])
_APP = dict_order(
    [
        "appname",
        "apptype",
        "metaversion",
        "updatetime",
        "deployerror",
        "canaries",
        "procs",
        "portals",
        "useservices",
        "useresources",
        "url",
    ]
)
_PROC = dict_order(
    [
        "procname",
        "proctype",
        "image",
        "numinstances",
        "cpu",
        "memory",
        "persistentdirs",
        "dnssearchs",
        "ports",
        "mountpoints",
        "httpsonly",
        "user",
        "workingdir",
        "entrypoint",
        "cmd",
        "envs",
        "logs",
        "pods",
        "depends",
        "lasterror",
        "url",
    ]
)
_POD = dict_order(
    [
        "containerid",
        "containername",
        "containerip",
        "containerport",
        "nodeip",
        "status",
        "uptime",
        "envs",
    ]
)
_PORT = dict_order(["portnumber", "porttype"])

_configs: dict[str, LainConfig] = {}


def _config(text: str) -> LainConfig:
    found = _configs.get(text)
    if found is None:
        found = _configs[text] = parse_lain_yaml(text, domains=_DOMAINS)
        if found.use_services or found.use_resources:
            raise ValueError(f"the baseline only knows apps without dependencies: {found.appname}")
    return found


def _ordered(order: Sequence[str], values: dict[str, Any]) -> dict[str, Any]:
    return {key: values[key] for key in order}


async def _rows(
    conn: AsyncConnection, *, limit: int | None
) -> tuple[list[Any], dict[int, list[Any]]]:
    """Deployed apps by name with their release's text, and their procs in creation order."""
    apps_query = (
        select(
            App.id,
            App.name,
            App.apptype,
            App.status,
            App.meta_version,
            App.last_error,
            App.updated_at,
            Release.lain_yaml,
            Release.image,
        )
        .join(Release, (Release.app_id == App.id) & (Release.meta_version == App.meta_version))
        .where(App.meta_version.is_not(None))
        .order_by(App.name)
    )
    if limit is not None:
        apps_query = apps_query.limit(limit)
    apps = list((await conn.execute(apps_query)).all())
    procs_query = (
        select(
            Proc.app_id,
            Proc.name,
            Proc.proc_type,
            Proc.meta_version,
            Proc.num_instances,
            Proc.cpu,
            Proc.memory,
            Proc.deployed,
            Proc.last_error,
        )
        .where(Proc.app_id.in_([app.id for app in apps]))
        .order_by(Proc.id)
    )
    procs: dict[int, list[Any]] = {app.id: [] for app in apps}
    for proc in (await conn.execute(procs_query)).all():
        procs[proc.app_id].append(proc)
    return apps, procs


def _spec(app: Any, proc: Any) -> ProcSpec:
    if proc.meta_version != app.meta_version or proc.proc_type == "portal":
        raise ValueError(f"the baseline only knows procs of the deployed release: {app.name}")
    spec = _config(app.lain_yaml).proc(proc.name)
    if spec is None:
        raise ValueError(f"{app.name}: the release has no proc {proc.name}")
    return spec


def _image(app: Any, spec: ProcSpec) -> str:
    return spec.image or app.image or f"{_REGISTRY}/{app.name}:release-{app.meta_version}"


# -- REST ---------------------------------------------------------------------------------


def _uptime(started_at: datetime | None) -> str:
    if started_at is None:
        return _GO_ZERO_TIME
    return started_at.astimezone(_SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _pod(job_id: str, instance: InstanceState, expose: int) -> dict[str, Any]:
    return _ordered(
        _POD,
        {
            "containerid": instance.instance_id,
            "containername": f"/{job_id}.v1-i{instance.number}-d0",
            "containerip": instance.ip or "",
            "containerport": instance.port if instance.port is not None else expose,
            "nodeip": instance.ip or "",
            "status": "True" if instance.status is InstanceStatus.RUNNING else "False",
            "uptime": _uptime(instance.started_at),
            "envs": list(instance.env),
        },
    )


def _rest_proc(app: Any, proc: Any, spec: ProcSpec, state: ProcState | None) -> dict[str, Any]:
    job_id = f"{app.name}.{proc.proc_type}.{proc.name}"
    # A resource template's raw jinja text stands where a number would (LAIN showed it so).
    cpu: int | str
    instances: int | str
    if state is not None:
        expose = spec.port.number if spec.port else 0
        image, cpu, instances = state.image, state.cpu, state.num_instances
        memory = format_memory(state.memory_bytes)
        pods = [_pod(job_id, i, expose) for i in state.instances]
        last_error = state.last_error or proc.last_error
    else:
        image = _image(app, spec)
        instances = (
            spec.num_instances_raw if spec.num_instances_raw is not None else spec.num_instances
        )
        cpu = spec.cpu_raw if spec.cpu_raw is not None else spec.cpu
        memory, pods, last_error = spec.memory, [], ""
    ports = []
    if spec.port is not None:
        ports = [
            _ordered(_PORT, {"portnumber": spec.port.number, "porttype": str(spec.port.protocol)})
        ]
    return _ordered(
        _PROC,
        {
            "procname": proc.name,
            "proctype": proc.proc_type,
            "image": image,
            "numinstances": instances,
            "cpu": cpu,
            "memory": memory,
            "persistentdirs": list(spec.persistent_dirs),
            "dnssearchs": list(spec.dns_search),
            "ports": ports,
            "mountpoints": list(spec.mountpoints),
            "httpsonly": spec.https_only,
            "user": spec.user,
            "workingdir": spec.working_dir,
            "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "cmd": list(spec.cmd) if spec.cmd is not None else None,
            "envs": list(spec.env),
            "logs": list(spec.logs),
            "pods": pods,
            "depends": [],
            "lasterror": last_error,
            "url": f"/v1/apps/{app.name}/procs/{proc.name}/",
        },
    )


def _rest_app(app: Any, procs: list[Any], states: dict[str, ProcState]) -> dict[str, Any]:
    rendered = []
    last_state = None
    for proc in procs:
        found = states.get(f"{app.name}.{proc.proc_type}.{proc.name}")
        last_state = found if found is not None and found.exists else None
        rendered.append(_rest_proc(app, proc, _spec(app, proc), last_state))
    deploy_error = app.last_error
    if not deploy_error and procs and last_state is not None:
        deploy_error = last_state.last_error
    return _ordered(
        _APP,
        {
            "appname": app.name,
            "apptype": app.apptype,
            "metaversion": app.meta_version or "",
            "updatetime": app.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "deployerror": deploy_error,
            "canaries": {},
            "procs": rendered,
            "portals": [],
            "useservices": [],
            "useresources": [],
            "url": f"/v1/apps/{app.name}/",
        },
    )


# -- GraphQL ------------------------------------------------------------------------------


def _gql_proc(app: Any, proc: Any, spec: ProcSpec, state: ProcState | None) -> dict[str, Any]:
    instances = []
    if proc.deployed and state is not None:
        instances = [
            {
                "number": i.number,
                "status": i.status.name,
                "healthy": i.healthy,
                "ip": i.ip,
                "port": i.port,
            }
            for i in state.instances
        ]
    return {
        "name": proc.name,
        "type": proc.proc_type.upper(),
        "numInstances": spec.num_instances if proc.num_instances is None else proc.num_instances,
        "cpu": spec.cpu if proc.cpu is None else proc.cpu,
        "memory": proc.memory or spec.memory,
        "image": _image(app, spec),
        "instances": instances,
    }


def _gql_app(app: Any, procs: list[Any], states: dict[str, ProcState]) -> dict[str, Any]:
    return {
        "name": app.name,
        "status": app.status.name,
        "metaVersion": app.meta_version,
        "procs": [
            _gql_proc(
                app,
                proc,
                _spec(app, proc),
                states.get(f"{app.name}.{proc.proc_type}.{proc.name}"),
            )
            for proc in procs
        ],
    }


# -- the app ------------------------------------------------------------------------------


def create_baseline(database_url: str, scheduler: LoadedScheduler) -> Starlette:
    """The bare app over `database_url`; the running state comes from `scheduler`."""
    engine: AsyncEngine | None = None

    async def read(limit: int | None) -> tuple[list[Any], dict[int, list[Any]], dict[str, Any]]:
        assert engine is not None
        async with engine.connect() as conn:
            apps, procs = await _rows(conn, limit=limit)
        names = {app.id: app.name for app in apps}
        job_ids = [
            f"{names[app_id]}.{p.proc_type}.{p.name}"
            for app_id, found in procs.items()
            for p in found
            if p.deployed
        ]
        return apps, procs, await scheduler.states(job_ids)

    async def rest_apps(request: Request) -> Response:
        apps, procs, states = await read(None)
        objects = [_rest_app(app, procs[app.id], states) for app in apps]
        body = _ordered(_ENVELOPE, {"apps": objects, "msg": "", "url": "/v1/apps/"})
        return Response(json.dumps(body).encode("ascii"), media_type="application/json")

    async def graphql(request: Request) -> Response:
        if json.loads(await request.body()).get("query") != APPS_QUERY:
            return Response(b'{"errors":[{"message":"unknown query"}]}', status_code=400)
        apps, procs, states = await read(_PAGE)
        nodes = [_gql_app(app, procs[app.id], states) for app in apps]
        body = {"data": {"apps": {"nodes": nodes}}}
        return Response(
            json.dumps(body, separators=(",", ":")).encode(), media_type="application/json"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal engine
        async with open_engine(database_url) as opened, scheduler:
            engine = opened
            yield

    return Starlette(
        routes=[
            Route("/api/v1/apps/", rest_apps, methods=["GET"]),
            Route("/graphql", graphql, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
