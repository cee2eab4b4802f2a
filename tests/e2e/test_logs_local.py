"""Instance output through both doors, with real processes on the local backend: tails,
follows that survive a restart and a rollout, odd bytes, and the dropped-lines marker."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.settings import load_settings
from tests.app_python import APP_PYTHON
from tests.live import GraphQLHttp, serve, subscribe
from tests.releases import V1, V2

TALKER = """\
import os, sys, time
n, tag = os.environ["DEPLOYD_POD_INSTANCE_NO"], os.environ["TAG"]
print(f"talker {n} {tag} pid {os.getpid()}", flush=True)
sys.stdout.buffer.write(b"bytes \\xff\\xfe end\\n")
sys.stdout.flush()
print("x" * 20000, flush=True)
print(f"complaint {n}", file=sys.stderr, flush=True)
time.sleep(3600)
"""

# Prints 5,000 lines in one write at each start: more than a follower may queue (100 here).
BURST = """\
import sys, time
sys.stdout.write("".join(f"burst {i}\\n" for i in range(5000)))
sys.stdout.flush()
time.sleep(3600)
"""

LOGS = "/api/v1/apps/hello/procs/talker/logs/"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z talker\.(\d+) (stdout|stderr) (.*)$")


def _block(code: str) -> str:
    return "\n".join("      " + line for line in code.splitlines())


def lain_yaml(tag: str) -> str:
    return f"""\
appname: hello
worker.talker:
  cmd:
    - {APP_PYTHON}
    - -c
    - |
{_block(TALKER)}
  num_instances: 2
  memory: 256m
  env:
    - TAG={tag}
worker.burst:
  cmd:
    - {APP_PYTHON}
    - -c
    - |
{_block(BURST)}
  memory: 256m
"""


@pytest.fixture
async def live(
    database_url: str, data_dir: Path, engine: object
) -> AsyncIterator[tuple[str, GraphQLHttp, httpx.AsyncClient]]:
    settings = replace(
        load_settings({}),
        data_dir=data_dir,
        database_url=database_url,
        reconcile_interval=0,
        log_follow_buffer_lines=100,
    )
    async with (
        serve(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        gql = GraphQLHttp(client)
        await _mutate(gql, 'registerRepo(input: {name: "hello"})')
        for version, tag in [(V1, "v1"), (V2, "v2")]:
            await gql(
                "mutation($v: String!, $y: String!) { publishRelease(input: "
                '{app: "hello", metaVersion: $v, lainYaml: $y}) { errors { code message } } }',
                v=version,
                y=lain_yaml(tag),
            )
        await _mutate(gql, f'deployApp(input: {{name: "hello", metaVersion: "{V1}"}})')
        try:
            yield base_url, gql, client
        finally:
            # Leave no process behind, whatever the test did.
            await gql('mutation { undeployApp(input: {name: "hello"}) { errors { code } } }')


async def _mutate(gql: GraphQLHttp, mutation: str) -> None:
    data = await gql(f"mutation {{ {mutation} {{ errors {{ code message }} }} }}")
    (payload,) = data.values()
    assert payload["errors"] == [], payload


async def _until_text(client: httpx.AsyncClient, url: str, wanted: str) -> str:
    async with asyncio.timeout(30):
        while True:
            response = await client.get(url)
            if wanted in response.text:
                return response.text
            await asyncio.sleep(0.1)


async def test_rest_tail_formats_lines_and_shows_odd_bytes_safely(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    _, _, client = live
    await _until_text(client, LOGS + "?tail=50", "complaint 1")
    text = await _until_text(client, LOGS + "?tail=50", "complaint 2")
    response = await client.get(LOGS + "?tail=50")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    parsed = [LINE.match(line) for line in text.splitlines()]
    assert all(parsed), text[:500]
    triples = [(m.group(1), m.group(2), m.group(3)) for m in parsed if m]
    assert any(t[:2] == ("1", "stdout") and t[2].startswith("talker 1 v1 pid") for t in triples)
    assert ("2", "stderr", "complaint 2") in triples
    assert ("1", "stdout", "bytes \ufffd\ufffd end") in triples
    long_line = next(t[2] for t in triples if t[2].startswith("xxx"))
    assert long_line == "x" * 16384 + " [line cut at 16 KB]"

    # One instance, one line.
    only = (await client.get(LOGS + "?instance=2&tail=1")).text.splitlines()
    assert len(only) == 1
    assert " talker.2 " in only[0]


async def test_bad_input_and_unknown_names(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    base_url, _, client = live
    for query, field in [("tail=10001", "tail"), ("tail=-1", "tail"), ("tail=ten", "tail")]:
        response = await client.get(f"{LOGS}?{query}")
        assert response.status_code == 400, response.text
        assert field in response.json()["msg"]
    assert (await client.get(LOGS + "?instance=x")).status_code == 400
    assert "instance must be a positive integer" in (await client.get(LOGS + "?instance=0")).text
    assert (await client.get(LOGS + "?follow=maybe")).status_code == 400

    missing_proc = await client.get("/api/v1/apps/hello/procs/nope/logs/")
    assert missing_proc.status_code == 404
    assert missing_proc.json()["msg"] == "no such proc nope in app hello"
    missing_app = await client.get("/api/v1/apps/nope/procs/talker/logs/")
    assert missing_app.status_code == 404
    assert "app with appname nope not exist" in missing_app.json()["msg"]
    missing_instance = await client.get(LOGS + "?instance=3")
    assert missing_instance.status_code == 404
    assert "no instance 3" in missing_instance.json()["msg"]

    body = await client.post(
        "/graphql",
        json={
            "query": '{ app(name: "hello") { procs { name instances { number '
            "logs(tail: 10001) { text } } } } }"
        },
    )
    (error, *_) = body.json()["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": "tail"}

    for variables, extensions in [
        ({"proc": "nope", "tail": 5}, {"code": "NOT_FOUND", "field": "proc"}),
        ({"proc": "talker", "tail": 10_001}, {"code": "INVALID", "field": "tail"}),
        ({"proc": "talker", "tail": 5, "instance": 9}, {"code": "NOT_FOUND", "field": "instance"}),
        ({"proc": "talker", "tail": 5, "after": "garbage"}, {"code": "INVALID", "field": "after"}),
    ]:
        query = (
            "subscription($proc: String!, $tail: Int!, $instance: Int, $after: String) { "
            'logs(app: "hello", proc: $proc, tail: $tail, instance: $instance, after: $after) '
            "{ cursor } }"
        )
        async with subscribe(base_url, query, variables) as sub:
            message = await sub.receive()
            assert message["type"] in ("error", "next"), message
            errors = (
                message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            )
            assert errors[0]["extensions"] == extensions


async def test_docs_describe_the_logs_extension(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    _, _, client = live
    page = (await client.get("/v1/docs/")).text
    assert "/apps/{app}/procs/{proc}/logs/" in page
    assert "?follow=1" in page
    assert "curl -N" in page
    swagger = (await client.get("/v1/swagger/")).json()
    operation = swagger["paths"]["/apps/{app}/procs/{proc}/logs/"]["get"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("app", "path"),
        ("proc", "path"),
        ("instance", "query"),
        ("tail", "query"),
        ("follow", "query"),
    ]


async def test_graphql_instance_logs_by_stream(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    _, gql, client = live
    await _until_text(client, LOGS + "?instance=1", "complaint 1")
    data = await gql(
        '{ app(name: "hello") { procs { name instances { number '
        "errs: logs(stream: STDERR) { instance stream text time } "
        "all: logs(tail: 2) { text } } } } }"
    )
    talker = next(p for p in data["app"]["procs"] if p["name"] == "talker")
    first = talker["instances"][0]
    assert [line["text"] for line in first["errs"]] == ["complaint 1"]
    assert first["errs"][0]["stream"] == "STDERR"
    assert first["errs"][0]["instance"] == 1
    assert first["errs"][0]["time"].endswith("+00:00")
    assert len(first["all"]) == 2


class _Follow:
    """`curl -N …?follow=1`: the response's lines as they arrive."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self._client, self._url = client, url
        self.status = 0
        self.content_type = ""

    async def run(self) -> None:
        async with self._client.stream("GET", self._url) as response:
            self.status = response.status_code
            self.content_type = response.headers["content-type"]
            async for line in response.aiter_lines():
                await self.lines.put(line)

    async def until(self, pattern: str) -> str:
        async with asyncio.timeout(30):
            while True:
                line = await self.lines.get()
                if re.search(pattern, line):
                    return line


@contextlib.asynccontextmanager
async def _following(client: httpx.AsyncClient, url: str) -> AsyncIterator[_Follow]:
    follow = _Follow(client, url)
    task = asyncio.create_task(follow.run())
    try:
        yield follow
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_rest_follow_survives_restart_and_rollout(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    _, gql, client = live
    await _until_text(client, LOGS + "?instance=1", "complaint 1")
    async with _following(client, LOGS + "?instance=1&tail=3&follow=1") as follow:
        await follow.until(r"talker\.1 stderr complaint 1")  # from the tail
        assert follow.status == 200
        assert follow.content_type == "text/plain; charset=utf-8"

        await _mutate(gql, 'restartProc(input: {app: "hello", proc: "talker", instance: 1})')
        restarted = await follow.until(r"talker\.1 stdout talker 1 v1 pid")
        await follow.until(r"talker\.1 stderr complaint 1")

        await _mutate(gql, f'updateApp(input: {{name: "hello", metaVersion: "{V2}"}})')
        replaced = await follow.until(r"talker\.1 stdout talker 1 v2 pid")
        assert replaced.split()[-1] != restarted.split()[-1]  # another process

    # The replaced processes' lines are still there, after the new ones'.
    kept = (await client.get(LOGS + "?instance=1&tail=10000")).text
    assert kept.index("talker 1 v1") < kept.index("talker 1 v2")


SUBSCRIPTION = """subscription($instance: Int, $tail: Int!, $after: String) {
  logs(app: "hello", proc: "talker", instance: $instance, tail: $tail, after: $after) {
    line { instance stream text time } droppedLines cursor
  }
}"""


async def _next_line(sub: Any, pattern: str) -> dict[str, Any]:
    while True:
        entry = (await sub.next_event())["logs"]
        if entry["line"] is not None and re.search(pattern, entry["line"]["text"]):
            return dict(entry)


async def test_graphql_subscription_tail_then_follow_and_resume(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    base_url, gql, client = live
    await _until_text(client, LOGS, "complaint 2")
    variables = {"instance": None, "tail": 100, "after": None}
    async with subscribe(base_url, SUBSCRIPTION, variables) as sub:
        seen: set[int] = set()
        while len(seen) < 2:  # both instances, from the tail, in whichever order
            seen.add((await _next_line(sub, "^complaint [12]$"))["line"]["instance"])
        await _mutate(gql, 'restartProc(input: {app: "hello", proc: "talker", instance: 2})')
        entry = await _next_line(sub, "^talker 2 v1 pid")
        cursor = entry["cursor"]
        after = await _next_line(sub, "^complaint 2$")
        assert after["line"]["stream"] == "STDERR"

    # Resuming after the restart's first line gives what followed it, not the tail.
    variables = {"instance": 2, "tail": 0, "after": cursor}
    async with subscribe(base_url, SUBSCRIPTION, variables) as sub:
        texts = {(await sub.next_event())["logs"]["line"]["text"][:10] for _ in range(3)}
        assert texts == {"bytes \ufffd\ufffd e", "x" * 10, "complaint "}


async def test_slow_follower_gets_a_dropped_lines_marker(
    live: tuple[str, GraphQLHttp, httpx.AsyncClient],
) -> None:
    _, gql, client = live
    burst = "/api/v1/apps/hello/procs/burst/logs/"
    await _until_text(client, burst + "?tail=1", "burst 4999")
    async with _following(client, burst + "?tail=1&follow=1") as follow:
        # The tail's line comes after the follower subscribed: nothing later is missed.
        await follow.until(r"burst 4999$")
        await _mutate(gql, 'restartProc(input: {app: "hello", proc: "burst"})')
        marker = await follow.until(r"lines dropped")
        assert re.match(
            r"^\S+ burst\.- lain \[(\d+) lines dropped: this reader was too slow\]$", marker
        )
        dropped = int(re.search(r"\[(\d+) lines", marker).group(1))  # type: ignore[union-attr]
        assert dropped > 0
    # The app lost nothing: every line is in the journal.
    text = (await client.get(burst + "?tail=10000")).text
    assert text.count(" burst.1 stdout burst ") == 10_000
