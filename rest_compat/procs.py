"""`/apps/<a>/procs/…`: read, deploy a missing proc, scale, resize, start/stop/restart,
undeploy, instance histories (COMPAT 3.10-3.12)."""

from __future__ import annotations

import re
from typing import Any

from resolvers import procs
from resolvers.core.errors import BackendUnavailable, Conflict, DomainError, InvalidInput, NotFound
from resolvers.core.units import InvalidSize, parse_size
from resolvers.lain import history, overview
from resolvers.lain.overview import AppOverview, ProcOverview
from resolvers.readmodel.views import InstanceAction, ProcType
from rest_compat import errors, render
from rest_compat.canary import CANARY_KEYS, canary_problems, not_supported
from rest_compat.envelope import DOCS_URL, Abort, Reply
from rest_compat.py2 import py2_str
from rest_compat.routing import Call

__all__ = [
    "deploy_proc",
    "get_proc",
    "instance_histories",
    "list_procs",
    "patch_proc",
    "undeploy_proc",
]

_SCHEDULED = "    status_code: 202\n    message: PodGroupSpec will be patched and rescheduled."
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")  # what Python 2's int() took from a string
_OPERATIONS = {str(action): action for action in InstanceAction}
_RESIZE_FIELDS = {"numInstances": "num_instances", "cpu": "cpu", "memory": "memory"}


async def _app(call: Call, key: str) -> AppOverview:
    app = call.names["app"]
    try:
        # A proc's object embeds nothing of other apps: the app's own procs are enough.
        return await overview.app_with_procs(call.ctx, name=app)
    except NotFound as exc:
        if exc.field == "app":
            raise Abort(errors.not_deployed(app, key)) from None
        raise


def _proc(target: AppOverview, name: str, *, status: int = 404) -> ProcOverview:
    found = target.proc(name)
    if found is None:
        raise Abort(errors.no_such_proc(target.app.name, name, status=status))
    return found


def _proc_url(call: Call) -> str:
    return f"/v1/apps/{call.names['app']}/procs/{call.names['proc']}/"


def _not_deployed(call: Call, proc: ProcOverview) -> Reply:
    msg = f"proc {proc.view.name} exists but not deployed\nplease deploy it first\n"
    return Reply(400, "proc", msg, _proc_url(call), render.proc_object(proc, with_status=False))


async def _fresh(call: Call) -> dict[str, Any] | None:
    """The proc with the state the scheduler reports now."""
    try:
        found = await overview.proc_overview(
            call.ctx, app=call.names["app"], proc=call.names["proc"]
        )
    except DomainError:
        return None
    return render.proc_object(found)


async def list_procs(call: Call) -> Reply:
    target = await _app(call, "procs")
    objects = [render.proc_object(p) for p in target.procs if p.view.type is not ProcType.PORTAL]
    return Reply(200, "procs", url=f"/v1/apps/{target.app.name}/procs/", obj=objects)


async def deploy_proc(call: Call) -> Reply:
    """Deploy a proc that is not running, which LAIN meant to do (COMPAT 4.7)."""
    body = call.json()
    name = body.get("procname") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise Abort(
            Reply(400, "proc", "invalid request: should be json body with procname(string)")
        )
    call.names["proc"] = name
    target = await _app(call, "proc")
    app = target.app.name
    proc = _proc(target, name, status=400)
    exists = Reply(409, "proc", f"proc with procname {name} already exists\n", _proc_url(call))
    if proc.view.deployed:
        return Reply(exists.status, exists.key, exists.msg, exists.url, render.proc_object(proc))
    try:
        await procs.deploy_proc(call.ctx, app=app, proc=name)
    except Conflict as exc:
        if exc.field == "proc":
            return Reply(exists.status, exists.key, exists.msg, exists.url, await _fresh(call))
        return Reply(500, "proc", _deploy_report(errors.relay_error(exc)), _proc_url(call))
    except DomainError as exc:
        shared = errors.proc_error(exc, app, name)
        if shared is not None:
            return shared
        return Reply(500, "proc", _deploy_report(errors.relay_error(exc)), _proc_url(call))
    added = errors.relay(202, "PodGroupSpec added into the orc engine.")
    return Reply(201, "proc", _deploy_report(added), _proc_url(call), await _fresh(call))


def _deploy_report(result: str) -> str:
    return f"proc deploy result:\n    {result}\n"


class SchedulerReadFailed(Exception):
    """The running state of a deployed proc could not be read (LAIN: a deployd failure)."""


async def get_proc(call: Call) -> Reply:
    proc = _proc(await _app(call, "proc"), call.names["proc"])
    if proc.state is not None:
        return Reply(200, "proc", url=_proc_url(call), obj=render.proc_object(proc))
    if proc.view.deployed and proc.view.type is not ProcType.PORTAL:
        # The overview reads past a scheduler failure; here it must not pass for "not
        # deployed". LAIN answered a failing deployd with its fatal 500 (COMPAT 3.11).
        try:
            await procs.proc_states(call.ctx, [proc.view.job_id])
        except BackendUnavailable as exc:
            raise SchedulerReadFailed(exc.message) from exc
    msg = f"proc {proc.view.name} exists but not deployed"
    return Reply(200, "proc", msg, _proc_url(call), render.proc_object(proc, with_status=False))


async def patch_proc(call: Call) -> Reply:
    body = call.json()
    if not isinstance(body, dict):
        msg = (
            "invalid request: should be json body with num_instances(integer) "
            "or cpu(integer) or memory(str)"
        )
        raise Abort(Reply(400, "proc", msg))
    operation = body.get("operation", "schedule")
    call.names["operation"] = "scale" if operation == "schedule" else py2_str(operation)
    if operation == "schedule" and _plain_scale(body):
        return await _scale(call, body["num_instances"])
    target = await _app(call, "proc")
    if operation == "schedule":
        return await _schedule(call, target, body)
    return await _operate(call, target, body, operation)


def _schedule_problems(body: dict[str, Any]) -> str:
    """LAIN's validation messages, one after the other without a separator (COMPAT 3.11)."""
    problems = ""
    for key in ("num_instances", "cpu"):
        value = body.get(key)
        # Booleans are ints to Python, and LAIN let them through; they are not counts.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems += f"invalid parameter: {key} ({py2_str(value)}) should be integer"
    memory = body.get("memory")
    if memory is not None:
        try:
            # Only what humanfriendly could not parse gets LAIN's message; a size out of
            # range is the resolver's to refuse, with the rule (as GraphQL says it).
            parse_size(memory)
        except InvalidSize:
            problems += (
                f"invalid parameter: memory ({py2_str(memory)}) "
                "humanfriendly.parse_size(memory) failed"
            )
    for key in CANARY_KEYS:
        if body.get(key) is not None:
            problems += canary_problems(key, body[key])
    return problems


async def _schedule(call: Call, target: AppOverview, body: dict[str, Any]) -> Reply:
    app, name, url = target.app.name, call.names["proc"], _proc_url(call)
    problems = _schedule_problems(body)
    if problems:
        return Reply(400, "proc", problems, url)
    given = {k: body[k] for k in ("num_instances", "cpu", "memory") if body.get(k) is not None}
    canaries = [key for key in CANARY_KEYS if body.get(key) is not None]
    if not given and not canaries:
        return Reply(400, "proc", "missing parameters: num_instances OR cpu OR memory", url)
    if "num_instances" in given and len(given) + len(canaries) > 1:
        return Reply(400, "proc", "scale num_instances should be a separate operation", url)
    proc = _proc(target, name)
    if not proc.view.deployed:
        return _not_deployed(call, proc)
    if not given:
        # Valid, and LAIN would have gone on to deployd (or the webrouter) with it.
        return Reply(500, "proc", not_supported(canaries[0]), url, await _fresh(call))
    try:
        if "num_instances" in given:
            await procs.scale_proc(
                call.ctx, app=app, proc=name, num_instances=given["num_instances"]
            )
        else:
            await procs.resize_proc(
                call.ctx, app=app, proc=name, cpu=given.get("cpu"), memory=given.get("memory")
            )
    except DomainError as exc:
        return await _schedule_error(call, exc, given)
    return Reply(202, "proc", _SCHEDULED, url, await _fresh(call))


def _plain_scale(body: dict[str, Any]) -> bool:
    """A body that sets num_instances, validly, and nothing else `_schedule` looks at."""
    if _schedule_problems(body):
        return False
    others = ("cpu", "memory", *CANARY_KEYS)
    return body.get("num_instances") is not None and all(body.get(k) is None for k in others)


async def _scale(call: Call, num_instances: int) -> Reply:
    """`_schedule` for a scale, without reading the app first: the resolver checks access
    and existence itself, and its answer is the proc as stored. Only a refusal looks at the
    app, to be told as `_schedule` tells it (app and proc first, then the refusal)."""
    app, name = call.names["app"], call.names["proc"]
    try:
        view = await procs.scale_proc(call.ctx, app=app, proc=name, num_instances=num_instances)
    except DomainError as exc:
        proc = _proc(await _app(call, "proc"), name)
        if not proc.view.deployed:
            return _not_deployed(call, proc)
        return await _schedule_error(call, exc, {"num_instances": num_instances})
    fresh = render.proc_object(await overview.proc_overview_of(call.ctx, view))
    return Reply(202, "proc", _SCHEDULED, _proc_url(call), fresh)


async def _schedule_error(call: Call, exc: DomainError, given: dict[str, Any]) -> Reply:
    app, name, url = call.names["app"], call.names["proc"], _proc_url(call)
    lain_name = _RESIZE_FIELDS.get(exc.field or "")
    if isinstance(exc, InvalidInput) and lain_name is not None:
        # Out of range (negative counts above all): refused before anything is scheduled.
        value = py2_str(given.get(lain_name))
        return Reply(400, "proc", f"invalid parameter: {lain_name} ({value}) {exc.message}", url)
    return errors.proc_error(exc, app, name) or Reply(
        500, "proc", errors.relay_error(exc), url, await _fresh(call)
    )


def _instance_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
        return number if number >= 0 else None
    return None


async def _operate(call: Call, target: AppOverview, body: dict[str, Any], operation: Any) -> Reply:
    app, name, url = target.app.name, call.names["proc"], _proc_url(call)
    action = _OPERATIONS.get(operation) if isinstance(operation, str) else None
    if action is None:
        # deployd took anything and did nothing; an operation that does nothing is a mistake.
        msg = (
            f"invalid parameter: operation ({py2_str(operation)}) should be start, stop or restart"
        )
        return Reply(400, "proc", msg, url)
    raw = body.get("instance", 0)
    number = _instance_number(raw)
    if number is None:
        return Reply(
            400, "proc", f"invalid parameter: instance ({py2_str(raw)}) should be integer", url
        )
    proc = _proc(target, name)
    no_instance = Reply(
        404,
        "proc",
        f"no such proc {name} instance {number}, in app {app}",
        f"/v1/apps/{app}/procs/",
    )
    if number > (proc.view.num_instances if proc.view.deployed else 0):
        return no_instance
    if not proc.view.deployed:
        return _not_deployed(call, proc)
    bare = render.proc_object(proc, with_status=False)
    try:
        await procs.control_proc(
            call.ctx, app=app, proc=name, action=action, instance=number or None
        )
    except DomainError as exc:
        if isinstance(exc, InvalidInput) and exc.field == "instance":
            return no_instance
        return errors.proc_error(exc, app, name) or Reply(
            500, "proc", errors.relay_error(exc), url, bare
        )
    # LAIN answered an operation with the proc as lain.yaml has it, and the procs' url.
    return Reply(202, "proc", _SCHEDULED, f"/v1/apps/{app}/procs/", bare)


async def undeploy_proc(call: Call) -> Reply:
    target = await _app(call, "proc")
    app, name, url = target.app.name, call.names["proc"], _proc_url(call)
    proc = _proc(target, name)
    if not proc.view.deployed:
        return _not_deployed(call, proc)
    bare = render.proc_object(proc, with_status=False)
    try:
        await procs.undeploy_proc(call.ctx, app=app, proc=name)
    except DomainError as exc:
        return errors.proc_error(exc, app, name) or Reply(
            500, "proc", errors.relay_error(exc), url, bare
        )
    deleted = errors.relay(202, "PodGroupSpec will be deleted from the orc engine.")
    return Reply(202, "proc", deleted, f"/v1/apps/{app}/procs/", bare)


async def instance_histories(call: Call) -> Reply:
    app, name, raw = call.names["app"], call.names["proc"], call.names["instance"]
    url = f"/v1/apps/{app}/procs/{name}/instance/{raw}/histories/"
    try:
        if not _INTEGER.fullmatch(raw):
            # LAIN crashed on int(); its code had this 400 for it, never reached.
            msg = "invalid request: should be json body with procname(detail string) instance(int)"
            await _app(call, "proc")
            return Reply(400, "proc history", msg, DOCS_URL)
        found = await history.instance_history(call.ctx, app=app, proc=name, instance=int(raw))
    except NotFound as exc:
        if exc.field == "app":
            return errors.not_deployed(app, "proc")
        raise
    if found is None:
        return Reply(200, "proc", f"proc {name} do not exists", url, [])
    return Reply(200, "proc", url=url, obj=render.history_object(found, raw))
