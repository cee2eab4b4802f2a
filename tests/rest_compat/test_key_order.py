"""App and proc objects are written directly in Python 2.7's key order (rest_compat.render's
`Ordered` objects, not reordered by py2.dumps): every object of every shape, in every
place it appears, must come out in the order 2.7 gave the console's insertion order."""

from __future__ import annotations

import json
from typing import Any

from rest_compat import render
from rest_compat.py2 import Shape, dict_order
from tests.rest_compat.helpers import Rest, deployed_hello
from tests.rest_compat.test_apps import (
    CLIENT_YAML,
    ECHO_YAML,
    RCLIENT_YAML,
    REDIS_YAML,
    _deployed,
)

_SHAPES: list[Shape] = [
    render._APP,
    render._RESOURCE_APP,
    render._SERVICE_USE,
    render._RESOURCE_USE,
    render._PROC,
    render._PORT,
    render._POD,
]


def _objects(value: Any, found: list[list[str]]) -> list[list[str]]:
    """The key order of every object in a JSON text parsed with its pairs kept in order."""
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        found.append([key for key, _ in value])
        for _, item in value:
            _objects(item, found)
    elif isinstance(value, list):
        for item in value:
            _objects(item, found)
    return found


def _orders(body: bytes) -> list[list[str]]:
    return _objects(json.loads(body, object_pairs_hook=list), [])


def test_each_shape_is_27s_order_of_the_consoles_insertion() -> None:
    for shape in _SHAPES:
        assert list(shape.keys) == dict_order(shape.inserted)


async def test_every_object_of_a_shape_is_in_its_order(rest: Rest) -> None:
    await deployed_hello(rest)
    await _deployed(rest, "echo", ECHO_YAML)
    await _deployed(rest, "client", CLIENT_YAML)
    await _deployed(rest, "redis", REDIS_YAML)
    await _deployed(rest, "rclient", RCLIENT_YAML)
    by_keys = {frozenset(shape.inserted): list(shape.keys) for shape in _SHAPES}
    seen: set[frozenset[str]] = set()
    for path in (
        "/api/v1/apps/",
        "/api/v1/apps/client/",
        "/api/v1/apps/redis/",
        "/api/v1/apps/rclient/",
        "/api/v1/apps/hello/procs/",
        "/api/v1/apps/hello/procs/web/",
        "/api/v1/resources/redis/instances/",
    ):
        response = await rest.request("GET", path)
        assert response.status_code == 200, path
        for order in _orders(response.content):
            expected = by_keys.get(frozenset(order))
            if expected is not None:
                seen.add(frozenset(order))
                assert order == expected, path
    # Every shape was met at least once (a resource's object, a service's, a pod's...).
    assert seen == set(by_keys)
