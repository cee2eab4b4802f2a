"""A newcomer's first run: `make serve` (the default, relative data dir) and a web and a
worker proc deployed with LAIN's REST calls, served by a real `lain-console serve`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app_python import APP_PYTHON
from tests.e2e.console import Console, graphql, healthy, publish_hello, until
from tests.releases import V1

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LAIN_CONSOLE_TEST_DATABASE_URL")),
    reason="runs the README's server on its default SQLite database",
)

# As the README's example: cmd is exec'd without a shell, so `sh -c` expands $PORT.
LAIN_YAML = f"""\
appname: hello
web:
  cmd: [sh, -c, 'exec {APP_PYTHON} -m http.server --directory . --bind 127.0.0.1 "$PORT"']
  port: 8080
  memory: 128m
worker:
  cmd: [sh, -c, 'while true; do echo "worker $DEPLOYD_POD_INSTANCE_NO alive"; sleep 1; done']
  memory: 32m
"""


@pytest.fixture
def make_serve(tmp_path: Path) -> Iterator[Console]:
    """The console `make serve` starts: from its own directory, data dir `.lain-console`."""
    checkout = tmp_path / "checkout"
    console = Console(checkout / ".lain-console", cwd=checkout)
    try:
        yield console
    finally:
        console.close()


async def _pods(client: httpx.AsyncClient, proc: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/apps/hello/procs/{proc}/")
    pods: list[dict[str, Any]] = response.json()["proc"]["pods"]
    return pods


async def _running(client: httpx.AsyncClient, proc: str) -> dict[str, Any] | None:
    pods = await _pods(client, proc)
    return pods[0] if len(pods) == 1 and pods[0]["status"] == "True" else None


async def test_make_serve_with_its_relative_data_dir_runs_web_and_worker(
    make_serve: Console,
) -> None:
    make_serve.start()
    async with httpx.AsyncClient(base_url=make_serve.url, timeout=30) as client:
        await until(lambda: healthy(client))
        assert (await client.post("/api/v1/repos/", json={"appname": "hello"})).status_code == 201
        published = await client.post(
            "/api/v1/repos/hello/versions/", json={"meta_version": V1, "lain_yaml": LAIN_YAML}
        )
        assert published.status_code == 201, published.text
        deployed = await client.post("/api/v1/apps/", json={"appname": "hello"})
        assert deployed.status_code in (201, 202), deployed.text

        web = await until(lambda: _running(client, "web"))
        worker = await until(lambda: _running(client, "worker"))
        # The web proc answers on the port it was given in $PORT.
        page = await until(lambda: _answer(web["containerport"]))
        assert page.status_code == 200
        # The worker really runs: its own output, written from its own directory.
        out = make_serve.data_dir / "local" / "logs" / "hello.worker.worker" / "1.stdout.log"
        await until(lambda: out.exists() and "worker 1 alive" in out.read_text())
        worker_pid = int(worker["containerid"])
        assert os.readlink(f"/proc/{worker_pid}/cwd") == str(make_serve.data_dir / "apps/hello")
        for proc in ("web", "worker"):
            body = (await client.get(f"/api/v1/apps/hello/procs/{proc}/")).json()["proc"]
            assert body["lasterror"] == "", body
        assert (make_serve.data_dir / "lain-console.db").is_file()
    assert f"serving on {make_serve.url}" in make_serve.log_text()


async def _answer(port: int) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(f"http://127.0.0.1:{port}/")
    except httpx.TransportError:
        return None


async def test_an_instance_that_cannot_start_says_why_in_last_error_and_the_log(
    make_serve: Console,
) -> None:
    make_serve.start()
    lain_yaml = "appname: hello\nworker:\n  cmd: [no-such-program-for-lain-tests]\n"
    async with httpx.AsyncClient(base_url=make_serve.url, timeout=30) as client:
        await publish_hello(client, lain_yaml)
        deployed = await client.post("/api/v1/apps/", json={"appname": "hello"})
        assert deployed.status_code in (201, 202), deployed.text
        query = '{ app(name: "hello") { procs { instances { status lastError } } } }'

        async def failed() -> dict[str, Any] | None:
            (proc,) = (await graphql(client, query))["app"]["procs"]
            return proc if proc["instances"][0]["status"] == "FAILED" else None

        proc = await until(failed)
    reason = "executable not found: no-such-program-for-lain-tests"
    assert proc["instances"][0]["lastError"] == reason
    lines = [line for line in make_serve.log_text().splitlines() if "cannot start" in line]
    assert lines
    assert all(
        " WARNING backends.local.instance " in line
        and line.endswith(f"app hello proc worker instance 1: cannot start: {reason}")
        for line in lines
    ), lines
