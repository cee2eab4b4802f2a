"""The Swagger 2.0 (OpenAPI 2) document of the REST endpoints, made from the route table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_compat.routing import Endpoint, Method

__all__ = ["document"]

_DESCRIPTION = (
    "The LAIN console API. Every path is served under /api/v1 and /v1; replies are "
    '{"<key>": <object or null>, "msg": "...", "url": "..."}. Send the token in the '
    "access-token header. POST /repos/<app>/versions/ publishes a release (this console's "
    "release store replaces LAIN's registry)."
)

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_REDIRECTS = {302: "Found"}

_ENVELOPE = {
    "type": "object",
    "properties": {
        "msg": {"type": "string"},
        "url": {"type": "string"},
    },
    "additionalProperties": True,
    "description": "The object sits under a key that depends on the endpoint and the outcome.",
}


def _operation(endpoint: Endpoint, verb: str, method: Method) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "type": "string"}
        for name in endpoint.parameters
    ]
    parameters.extend(
        {"name": name, "in": "query", "required": False, "type": kind, "description": text}
        for name, kind, text in method.query
    )
    if method.body:
        parameters.append(
            {
                "name": "body",
                "in": "body",
                "required": verb in ("POST",),
                "description": method.body,
                "schema": {"type": "object"},
            }
        )
    responses = {
        str(status): {"description": _REASONS[status], "schema": {"$ref": "#/definitions/Envelope"}}
        for status in (*method.statuses, 405)
        if status not in _REDIRECTS
    }
    # A redirect has no body, only its Location.
    responses.update(
        {str(s): {"description": _REDIRECTS[s]} for s in method.statuses if s in _REDIRECTS}
    )
    return {
        "summary": method.summary,
        "operationId": f"{verb.lower()}_{method.handler.__name__}",
        "parameters": parameters,
        "responses": responses,
    }


def document(host: str, endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        methods = dict(endpoint.methods)
        if endpoint.any_method is not None:
            methods = {"GET": endpoint.any_method}
        if methods:
            paths[f"/{endpoint.path}"] = {
                verb.lower(): _operation(endpoint, verb, method) for verb, method in methods.items()
            }
    return {
        "swagger": "2.0",
        "info": {"title": "LAIN console API", "version": "v1", "description": _DESCRIPTION},
        "host": host,
        "basePath": "/api/v1",
        "schemes": ["http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "access-token": {"type": "apiKey", "name": "access-token", "in": "header"}
        },
        "security": [{"access-token": []}],
        "paths": paths,
        "definitions": {"Envelope": _ENVELOPE},
    }
