"""LAIN's objects (COMPAT 2) built from resolver views.

The app and proc objects (thousands of dicts in a list of apps) are written directly in the
order the console's bytes had, as `Ordered` dicts that `py2.dumps` writes as they are: each
`py2.Shape` below records the console's insertion order and 2.7's order computed from it,
and tests/rest_compat checks that every object here comes out in its shape's order. The
other, small objects are built in the console's insertion order and reordered by `py2.dumps`.
Field names and value formats are LAIN's, whatever ours are called.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from resolvers.core.audit import AuditView
from resolvers.core.units import format_memory
from resolvers.lain.catalog import RepoDetails
from resolvers.lain.history import InstanceHistoryView
from resolvers.lain.overview import AppOverview, Overviews, ProcOverview
from resolvers.maintainers import MaintainerView
from resolvers.readmodel import health
from resolvers.readmodel.streamports import StreamPortView
from resolvers.readmodel.views import AppType, InstanceState, InstanceStatus, ProcType
from rest_compat.oplog import container_name, oplog_entry
from rest_compat.py2 import Ordered, Shape, dumps

__all__ = [
    "app_object",
    "auth_status_object",
    "detail_object",
    "history_object",
    "maintainer_object",
    "oplog_text",
    "portal_object",
    "proc_object",
    "repo_object",
    "role_object",
    "stream_port_object",
    "version_object",
]

# Asia/Shanghai, where LAIN showed container start times; it has had no DST since 1991.
_SHANGHAI = timezone(timedelta(hours=8))
_GO_ZERO_TIME = "0001-01-01 00:00:00Z"  # what LAIN showed for a container never started


# The console's insertion order of each object that a list of apps repeats; the objects
# below write their keys in `.keys`, 2.7's order (a keyword call is ~6x slower).
_APP = Shape(
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
)
_RESOURCE_APP = Shape(*_APP.inserted, "resourceinstances")
_SERVICE_USE = Shape("servicename", "serviceprocs", "service")
_RESOURCE_USE = Shape("resourcename", "resourceprocs", "resourceinstance")
_PROC = Shape(
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
)
_PORT = Shape("portnumber", "porttype")
_POD = Shape(
    "containerid",
    "containername",
    "containerip",
    "containerport",
    "nodeip",
    "status",
    "uptime",
    "envs",
)


def repo_object(app: str) -> dict[str, Any]:
    return {"appname": app, "url": f"/v1/repos/{app}/"}


def version_object(app: str, tags: Sequence[str]) -> dict[str, Any]:
    return {"appname": app, "tags": list(tags), "url": f"/v1/repos/{app}/versions/"}


def detail_object(details: RepoDetails) -> dict[str, Any]:
    return {
        "appname": details.app,
        "giturl": details.giturl,
        "meta_version": details.meta_version,
        "url": f"/v1/repos/{details.app}/details/",
    }


def role_object(role: str | None) -> dict[str, Any]:
    return {"role": role or "normal"}


def maintainer_object(maintainer: MaintainerView) -> dict[str, Any]:
    # The url is the collection's even for one maintainer (COMPAT 2.8).
    return {
        "appname": maintainer.app,
        "username": maintainer.username,
        "role": str(maintainer.role) or "normal",
        "url": f"/v1/repos/{maintainer.app}/maintainers/",
    }


def auth_status_object(enabled: bool) -> dict[str, Any]:
    return {"status": "opened" if enabled else "closed"}


def history_object(view: InstanceHistoryView, instance: str) -> dict[str, Any]:
    entries = []
    for change in view.changes:
        entry: dict[str, Any] = {"status": change.status, "action": change.status}
        entry["time"] = change.time
        # deployd omitted empty fields.
        if change.image:
            entry["image"] = change.image
        if change.node:
            entry["node"] = change.node
        entries.append(entry)
    # `Instance` is the raw path segment, a string (COMPAT 2.11).
    return {"Name": view.job_id, "Instance": instance, "StatusHistory": entries}


def stream_port_object(port: StreamPortView) -> dict[str, Any]:
    # deployd's StreamProc: the embedded StreamPort's fields, then NameSpace and ProcName.
    return {
        "srcport": port.src,
        "dstport": port.dst,
        "proto": port.proto,
        "NameSpace": port.app,
        "ProcName": port.job_id,
    }


def oplog_text(entries: Sequence[AuditView]) -> str:
    """Django's `serializers.serialize('json', …)` of the entries, as the console sent it."""
    objects = []
    for entry in entries:
        lain = oplog_entry(entry)
        # Django 1.8's get_dump_object: model and fields, then pk.
        fields = {
            "app": entry.app,
            "user": entry.username,
            "time": _django_time(entry.at),
            "message": lain.message,
            "app_version": lain.app_version,
            "op": lain.op,
        }
        objects.append({"model": "oplog.oplog", "fields": fields, "pk": entry.id})
    return dumps(objects).decode("ascii")


def _django_time(at: datetime) -> str:
    # DjangoJSONEncoder: ISO 8601, milliseconds, "Z" for UTC.
    text = at.astimezone(UTC).replace(tzinfo=None).isoformat()
    if at.microsecond:
        text = text[:23]
    return text + "Z"


def app_object(
    overviews: Overviews,
    name: str,
    *,
    iteration: bool = True,
    client: str | None = None,
    portals: Collection[str] | None = None,
) -> Ordered:
    """The app object (COMPAT 2.4). Nested in a client's (`iteration=False`, `client`), it
    leaves out its own services and resources and keeps only the `portals` the client uses,
    with the client's pods."""
    overview = overviews.apps[name]
    app = overview.app
    procs = [p for p in overview.procs if p.view.type is not ProcType.PORTAL]
    rendered_procs = [proc_object(p) for p in procs]
    deploy_error = health.deploy_error(app, [(p.view, p.state) for p in procs])
    own_portals = [
        portal_object(p, client=client)
        for p in overview.procs
        if p.view.type is ProcType.PORTAL and (portals is None or p.view.name in portals)
    ]
    updated = app.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    services = _use_services(overviews, overview) if iteration else []
    resources = _use_resources(overviews, overview) if iteration else []
    if app.apptype is not AppType.RESOURCE:
        return Ordered(  # _APP
            useresources=resources,
            updatetime=updated,
            apptype=str(app.apptype),
            appname=app.name,
            url=f"/v1/apps/{app.name}/",
            portals=own_portals,
            deployerror=deploy_error,
            useservices=services,
            metaversion=app.meta_version or "",
            canaries={},
            procs=rendered_procs,
        )
    # Another key makes another 2.7 order: that of a resource's object.
    instances = [
        app_object(overviews, instance, iteration=False)
        for instance in overviews.instances.get(app.name, ())
        if instance in overviews.apps
    ]
    return Ordered(  # _RESOURCE_APP
        useresources=resources,
        updatetime=updated,
        apptype=str(app.apptype),
        appname=app.name,
        url=f"/v1/apps/{app.name}/",
        portals=own_portals,
        resourceinstances=instances,
        deployerror=deploy_error,
        useservices=services,
        metaversion=app.meta_version or "",
        canaries={},
        procs=rendered_procs,
    )


def _portal_name(overview: AppOverview | None, service: str) -> str | None:
    """The portal serving `service`; guessed as LAIN did when the app is not deployed."""
    if overview is None or overview.config is None:
        return f"portal-{service}"
    portal = overview.config.portal_for_service(service)
    return portal.name if portal is not None else None


def _nested(
    overviews: Overviews, name: str, client: str, procs: Sequence[str | None]
) -> dict[str, Any]:
    if name not in overviews.apps:
        return {}
    used = {proc for proc in procs if proc is not None}
    return app_object(overviews, name, iteration=False, client=client, portals=used)


def _use_services(overviews: Overviews, overview: AppOverview) -> list[Ordered]:
    if overview.config is None:
        return []
    entries = []
    for service_app, services in overview.config.use_services.items():
        procs = [_portal_name(overviews.get(service_app), s) for s in services]
        entries.append(
            Ordered(  # _SERVICE_USE
                servicename=service_app,
                serviceprocs=procs,
                service=_nested(overviews, service_app, overview.app.name, procs),
            )
        )
    return entries


def _use_resources(overviews: Overviews, overview: AppOverview) -> list[Ordered]:
    if overview.config is None:
        return []
    entries = []
    for resource, use in overview.config.use_resources.items():
        # LAIN's resource instance naming: resource.<resource>.<client>.
        instance = f"resource.{resource}.{overview.app.name}"
        procs = [_portal_name(overviews.get(instance), s) for s in use.services]
        entries.append(
            Ordered(  # _RESOURCE_USE
                resourcename=resource,
                resourceprocs=procs,
                resourceinstance=_nested(overviews, instance, overview.app.name, procs),
            )
        )
    return entries


def proc_object(proc: ProcOverview, *, with_status: bool = True) -> Ordered:
    """The proc object (COMPAT 2.5); with the scheduler's state when it runs the proc and
    `with_status`, else the lain.yaml values and no pods, as LAIN showed it."""
    view = proc.view
    spec = view.spec
    state = proc.state if with_status else None
    if state is not None:
        image = state.image
        cpu: int | str = state.cpu  # lain.yaml's text as given, when not running
        instances: Any = state.num_instances
        memory = format_memory(state.memory_bytes)
        pods = [
            _pod_object(view.job_id, i, spec.port.number if spec.port else 0)
            for i in state.instances
        ]
        last_error = health.proc_error(view, state)
    else:
        image = view.image
        instances = (
            spec.num_instances_raw if spec.num_instances_raw is not None else spec.num_instances
        )
        cpu = spec.cpu_raw if spec.cpu_raw is not None else spec.cpu
        memory, pods, last_error = spec.memory, [], ""
    ports = (
        []
        if spec.port is None
        else [Ordered(porttype=str(spec.port.protocol), portnumber=spec.port.number)]  # _PORT
    )
    return Ordered(  # _PROC
        mountpoints=list(spec.mountpoints),
        envs=list(spec.env),
        numinstances=instances,
        logs=list(spec.logs),
        dnssearchs=list(spec.dns_search),
        proctype=str(view.type),
        persistentdirs=list(spec.persistent_dirs),
        image=image,
        cmd=list(spec.cmd) if spec.cmd is not None else None,
        workingdir=spec.working_dir,
        ports=ports,
        procname=view.name,
        depends=[],
        entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
        user=spec.user,
        memory=memory,
        url=f"/v1/apps/{view.app}/procs/{view.name}/",
        lasterror=last_error,
        pods=pods,
        cpu=cpu,
        httpsonly=spec.https_only,
    )


def portal_object(portal: ProcOverview, *, client: str | None = None) -> Ordered:
    """A portal (COMPAT 2.10): its lain.yaml values always, and the pods it runs for each
    client app (only `client`'s, when given); its error is that of the last pod."""
    data = proc_object(portal, with_status=False)
    expose = portal.view.spec.port.number if portal.view.spec.port else 0
    instances = [
        (state.job_id, instance)
        for owner, state in portal.clients
        if client is None or owner == client
        for instance in state.instances
    ]
    # Setting keys the object has keeps its order, in 2.7 as here.
    data["pods"] = [_pod_object(job_id, instance, expose) for job_id, instance in instances]
    data["lasterror"] = instances[-1][1].last_error if instances else ""
    return data


def _pod_object(job_id: str, instance: InstanceState, expose: int) -> Ordered:
    # The port clients reach the instance on: the one the backend gave it (the local backend
    # picks a free port), else the lain.yaml port the container exposes, as deployd showed.
    port = instance.port if instance.port is not None else expose
    running = instance.status is InstanceStatus.RUNNING
    ip = instance.ip or ""
    return Ordered(  # _POD
        status="True" if running else "False",
        containername=container_name(job_id, instance.number),
        uptime=_uptime(instance.started_at),
        containerid=instance.instance_id,
        envs=list(instance.env),
        containerip=ip,
        nodeip=ip,
        containerport=port,
    )


def _uptime(started_at: datetime | None) -> str:
    if started_at is None:
        return _GO_ZERO_TIME
    return started_at.astimezone(_SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
