"""The small endpoints: auth status, oplogs, the API documents and `/` (COMPAT 3.14, 3.15)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from resolvers import sso
from resolvers.core.audit import recent_operations
from resolvers.core.errors import Unauthenticated
from resolvers.readmodel import streamports
from rest_compat import render
from rest_compat.envelope import DOCS_URL, LAIN_HEADERS, Reply, origin, permanent_redirect
from rest_compat.openapi import document
from rest_compat.routing import Call, Endpoint

__all__ = [
    "auth_status",
    "authorize",
    "docs_page",
    "oplogs",
    "root_redirect",
    "swagger",
    "used_stream_ports",
]


async def auth_status(call: Call) -> Reply:
    obj = render.auth_status_object(call.services.auth_enabled)
    return Reply(200, "auth", "get auth status success", "/v1/authorize/status/", obj)


async def authorize(call: Call) -> Reply | Response:
    """SSO's redirect target: exchange `?code=` for a token and send the browser on to the UI
    with it (COMPAT 3.14); any method, as Django's view took them all."""
    codes = parse_qs(call.request.url.query, keep_blank_values=True).get("code")
    if codes is None:
        msg = "invalid request: should be json body with sso code(string)"
        return Reply(400, "auth", msg, DOCS_URL)
    try:
        # Django's QueryDict gave the last of repeated values.
        login = await sso.exchange_code(call.ctx, code=codes[-1])
    except Unauthenticated:
        return Reply(401, "auth", "unauthorized : don't have the access to console", DOCS_URL)
    complete = call.services.sso.complete_url if call.services.sso is not None else ""
    query = urlencode({"access_token": login.access_token, "expires_in": login.expires_in})
    return Response(
        b"",
        status_code=302,
        headers={"Location": f"{complete}?{query}"},
        media_type="text/html; charset=utf-8",
    )


async def oplogs(call: Call) -> Reply:
    app = call.names["app"]
    entries = await recent_operations(call.ctx, app=app)
    # The value is a JSON document in a string, not an array (COMPAT 9.16).
    return Reply(200, "oplog", url=f"/v1/oplogs/{app}/", obj=render.oplog_text(entries))


async def used_stream_ports(call: Call) -> Reply:
    ports = await streamports.used_stream_ports(call.ctx)
    objects = [render.stream_port_object(port) for port in ports]
    return Reply(200, "streamrouter", url="/v1/usedstreamrouterports", obj=objects)


def _host(call: Call) -> str:
    return call.request.headers.get("host") or call.request.url.netloc


async def swagger(call: Call, endpoints: Sequence[Endpoint]) -> Response:
    """The Swagger 2.0 document of these endpoints, `host` set to the server asked."""
    # A template in LAIN, not a Python dict: written in its natural order.
    body = json.dumps(document(_host(call), endpoints), ensure_ascii=True)
    return Response(body.encode("ascii"), media_type="application/json")


async def docs_page(call: Call, endpoints: Sequence[Endpoint]) -> Response:
    """A readable page of the same document, without scripts or anything fetched."""
    spec = document(_host(call), endpoints)
    rows = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}{}</code></td><td>{}</td></tr>".format(
                    method.upper(),
                    html.escape(spec["basePath"]),
                    html.escape(path),
                    html.escape(operation["summary"]),
                )
            )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(spec['info']['title'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em;"
        "vertical-align:top}</style></head><body>"
        f"<h1>{html.escape(spec['info']['title'])}</h1>"
        f"<p>{html.escape(spec['info']['description'])}</p>"
        "<p>The same, as Swagger 2.0 JSON: <a href='../swagger/'>swagger/</a>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what it does</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return HTMLResponse(page)


async def root_redirect(request: Request) -> Response:
    """`/` sent browsers to the documentation, permanently (Django's RedirectView), with the
    absolute Location Django 1.8 made of every redirect."""
    response = permanent_redirect(f"{origin(request)}/v1/docs/")
    response.headers.update(LAIN_HEADERS)
    return response
