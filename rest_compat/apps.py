"""`/apps/` and `/apps/<a>/`: list, deploy, read, update, undeploy; resource instances
(COMPAT 3.8, 3.9, 3.13)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from resolvers import apps, procs
from resolvers.core.errors import Conflict, DomainError, Forbidden, NotFound
from resolvers.lain import overview
from resolvers.lain.overview import AppOverview, Overviews
from resolvers.readmodel.views import AppStatus, AppType, ProcType
from rest_compat import errors, render
from rest_compat.envelope import Abort, Reply
from rest_compat.py2 import dict_order, py2_str
from rest_compat.routing import Call

__all__ = [
    "deploy_app",
    "get_app",
    "list_apps",
    "list_resource_instances",
    "prepare_deploy",
    "undeploy_app",
    "update_app",
]


def _apptype_filter(query: str) -> str | None:
    """LAIN's quirk (COMPAT 9.13): any query string filters, on `app` unless it says
    `apptype`; no query string lists every type."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return None
    wanted = "app"
    for name, value in pairs:
        if name == "apptype":
            wanted = value  # Django's QueryDict.get: the last value wins
    return wanted


async def list_apps(call: Call) -> Reply:
    wanted = _apptype_filter(call.request.url.query)
    objects: list[dict[str, Any]] = []
    if wanted is None or wanted in set(AppType):
        apptype = AppType(wanted) if wanted is not None else None
        found = await overview.app_overviews(call.ctx, apptype=apptype)
        objects = [render.app_object(found, item.app.name) for item in found.items]
    return Reply(200, "apps", url="/v1/apps/", obj=objects)


def prepare_deploy(call: Call) -> None:
    """LAIN parsed this body before its permission check, which needs the app's name."""
    body = call.json()
    app = body.get("appname") if isinstance(body, dict) else None
    if not isinstance(app, str):
        raise Abort(Reply(400, "app", "invalid request: should be json body with appname(string)"))
    call.names["app"] = app


async def _app_object(call: Call, app: str) -> dict[str, Any] | None:
    try:
        found = await overview.app_overview(call.ctx, name=app)
    except NotFound:
        return None
    return render.app_object(found, app)


async def _reachable(call: Call, app: str) -> bool:
    current = await apps.get_app(call.ctx, name=app)
    return current.meta_version is not None or current.status is AppStatus.DEPLOYING


async def deploy_app(call: Call) -> Reply:
    app = call.names["app"]
    url = f"/v1/apps/{app}/"
    exists = Reply(409, "app", f"app with appname {app} already exists\n", url)
    if await _reachable(call, app):
        return replace(exists, obj=await _app_object(call, app))
    try:
        await apps.deploy_app(call.ctx, name=app)
    except DomainError as exc:
        # Deployed or deploying meanwhile is LAIN's 409; any other failure undid the deploy.
        if isinstance(exc, Conflict) and await _reachable(call, app):
            return replace(exists, obj=await _app_object(call, app))
        return errors.deploy_error(exc, app, call.services.registry)
    msg = f"deploy request of app {app} has been accepted."
    return Reply(202, "app", msg, url, await _app_object(call, app))


async def _deployed(call: Call, app: str, key: str) -> Overviews:
    try:
        return await overview.app_overview(call.ctx, name=app)
    except NotFound as exc:
        if exc.field == "app":
            raise Abort(errors.not_deployed(app, key)) from None
        raise


async def get_app(call: Call) -> Reply:
    app = call.names["app"]
    found = await _deployed(call, app, "app")
    return Reply(200, "app", url=f"/v1/apps/{app}/", obj=render.app_object(found, app))


async def update_app(call: Call) -> Reply:
    app = call.names["app"]
    body = call.json()  # not JSON means {}, JSON but not an object means "the newest"
    version: Any = body.get("meta_version") if isinstance(body, dict) else None
    if not await _reachable(call, app):
        return errors.not_deployed(app, "app")
    try:
        if version is not None and not isinstance(version, str):
            raise NotFound(f"no release {version!r}", field="metaVersion")
        await apps.update_app(call.ctx, name=app, meta_version=version)
    except DomainError as exc:
        shown = None if version is None else py2_str(version)
        reply = errors.update_error(exc, app, shown)
        if reply.status == 400 and version is not None:
            reply = replace(reply, obj=await _app_object(call, app))
        return reply
    msg = f"update request of app {app} has been accepted."
    return Reply(202, "app", msg, f"/v1/apps/{app}/", await _app_object(call, app))


async def undeploy_app(call: Call) -> Reply:
    app = call.names["app"]
    found = await _deployed(call, app, "app")
    target = found.apps[app]
    if target.app.apptype is AppType.RESOURCE:
        # A resource is a template other apps' instances are made from (COMPAT 4.6).
        msg = "Not allow to delete resource app."
        return Reply(403, "app", msg, "/v1/apps/", render.app_object(found, app))
    try:
        await apps.undeploy_app(call.ctx, name=app)
    except Forbidden as exc:
        return Reply(403, "app", exc.message, "/v1/apps/", render.app_object(found, app))
    except NotFound:
        return errors.not_deployed(app, "app")
    except DomainError as exc:
        failed = await _still_running(call, found, app, exc)
        return Reply(500, "app", _removal_report(found, app, failed), f"/v1/apps/{app}/")
    return Reply(202, "app", _removal_report(found, app, {}), "/v1/apps/", render.repo_object(app))


def _removed_apps(found: Overviews, app: str) -> list[AppOverview]:
    """The app, then the resource instances undeploying it removes too."""
    target = found.apps[app]
    uses = target.config.use_resources if target.config is not None else {}
    # LAIN's resource instance naming: resource.<resource>.<client>.
    instances = (found.get(f"resource.{resource}.{app}") for resource in uses)
    return [target, *(instance for instance in instances if instance is not None)]


def _jobs(target: AppOverview) -> dict[str, list[str]]:
    """Report entry -> the jobs behind it: a proc's job, or a portal's job per client."""
    jobs: dict[str, list[str]] = {}
    for proc in target.procs:
        if proc.view.type is ProcType.PORTAL:
            jobs[proc.view.job_id] = [state.job_id for _, state in proc.clients]
        elif proc.view.deployed:
            jobs[proc.view.job_id] = [proc.view.job_id]
    return jobs


async def _still_running(
    call: Call, found: Overviews, app: str, exc: DomainError
) -> dict[str, str]:
    """The report entries an incomplete undeploy left running, with why."""
    jobs = {entry: ids for t in _removed_apps(found, app) for entry, ids in _jobs(t).items()}
    wanted = [job for ids in jobs.values() for job in ids]
    try:
        states = await procs.proc_states(call.ctx, wanted)
    except DomainError:
        return {entry: exc.message for entry, ids in jobs.items() if ids}
    return {entry: exc.message for entry, ids in jobs.items() if any(states[j].exists for j in ids)}


def _removal_report(found: Overviews, app: str, failed: Mapping[str, str]) -> str:
    """LAIN's report of an undeploy (COMPAT 3.9): each removal under what came of it, then
    the same for each resource instance removed with the app, under its name only."""
    target, *instances = _removed_apps(found, app)
    report = "app remove results:\n" + _removal_sections(target, failed)
    if instances:
        sections = {i.app.name: _removal_sections(i, failed) for i in instances}
        # LAIN kept the instances' reports in a dict keyed by name: Python 2's order.
        parts = [f"  {name}\n{sections[name]}\n" for name in dict_order(sections)]
        report += "resource instance remove results:\n" + "".join(parts)
    return report


def _removal_sections(target: AppOverview, failed: Mapping[str, str]) -> str:
    # Each outcome was a dict keyed by pod-group name, filled with the procs and then the
    # portals in lain.yaml order, and printed in Python 2's dict order.
    done: dict[str, str] = {}
    missed: dict[str, str] = {}
    failures: dict[str, str] = {}
    jobs = _jobs(target)
    for proc in sorted(target.procs, key=lambda p: p.view.type is ProcType.PORTAL):
        entry = proc.view.job_id
        portal = proc.view.type is ProcType.PORTAL
        if entry in failed:
            failures[entry] = _entry(entry, 500, failed[entry])
        elif jobs.get(entry):
            message = (
                "Dependency pod will be removed from the orc engine."
                if portal
                else "PodGroupSpec will be deleted from the orc engine."
            )
            done[entry] = _entry(entry, 202, message)
        else:
            message = "DependencyPod not existed" if portal else "PodGroup not existed"
            missed[entry] = _entry(entry, 404, message)
    return (
        "remove successed results:\n"
        + _in_py2_order(done)
        + "remove missed results:\n"
        + _in_py2_order(missed)
        + "remove failed results:\n"
        + _in_py2_order(failures)
    )


def _in_py2_order(entries: Mapping[str, str]) -> str:
    return "".join(entries[name] for name in dict_order(entries))


def _entry(job: str, status: int, message: str) -> str:
    return f"    {job}\n{errors.relay(status, message)}\n"


async def list_resource_instances(call: Call) -> Reply:
    resource = call.names["app"]
    found = await overview.resource_instance_overviews(call.ctx, resource=resource)
    objects = [render.app_object(found, item.app.name) for item in found.items]
    return Reply(200, "instances", url=f"/v1/resources/{resource}/instances/", obj=objects)
