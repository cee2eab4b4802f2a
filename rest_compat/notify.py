"""`/notify/<type>/`: the subscribers of image-push notifications (COMPAT 3.15, 8.3)."""

from __future__ import annotations

from resolvers import notify
from resolvers.core.errors import InvalidInput, NotFound
from rest_compat.envelope import Abort, Reply
from rest_compat.routing import Call

__all__ = ["add_subscriber", "body_gate", "list_subscribers", "remove_subscriber"]

_BAD_BODY = "invalid request: should be json body with notify_url(array string)"


def _url(call: Call) -> str:
    return f"/v1/notify/{call.names['notify_type']}/"


def body_gate(call: Call) -> None:
    """LAIN read the body of every method but GET before dispatching on the method."""
    if call.method == "GET":
        return
    body = call.json()
    notify_url = body.get("notify_url") if isinstance(body, dict) else None
    if not isinstance(notify_url, str):
        raise Abort(Reply(400, "notify", _BAD_BODY, _url(call)))
    call.names["notify_url"] = notify_url


async def list_subscribers(call: Call) -> Reply:
    try:
        urls = await notify.list_subscribers(call.ctx, notify_type=call.names["notify_type"])
    except InvalidInput:
        return Reply(400, "notify", "", _url(call))
    return Reply(200, "notify", "", _url(call), urls)


async def add_subscriber(call: Call) -> Reply:
    try:
        added = await notify.add_subscriber(
            call.ctx, notify_type=call.names["notify_type"], url=call.names["notify_url"]
        )
    except InvalidInput as exc:
        # LAIN said nothing for an unknown type; a refused URL (auth on only) says why.
        return Reply(400, "notify", exc.message if exc.field == "notifyUrl" else "", _url(call))
    return Reply(200, "notify", "", _url(call), added)


async def remove_subscriber(call: Call) -> Reply:
    try:
        removed = await notify.remove_subscriber(
            call.ctx, notify_type=call.names["notify_type"], url=call.names["notify_url"]
        )
    except (InvalidInput, NotFound):
        return Reply(400, "notify", "", _url(call))
    return Reply(200, "notify", "", _url(call), removed)
