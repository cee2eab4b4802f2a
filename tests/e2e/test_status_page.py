"""The status page and GraphiQL's page in a real browser, against `lain-console serve` with
real processes on the local backend and access control on."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.app_python import APP_PYTHON
from tests.e2e.browser import chromium
from tests.e2e.console import _COMMAND, Console, graphql, healthy, publish_hello, until

TALKER_YAML = f"""\
appname: hello
worker:
  cmd:
    - {APP_PYTHON}
    - -c
    - |
      import os, time
      print("hello from", os.environ["DEPLOYD_POD_INSTANCE_NO"], flush=True)
      print('<img src=x onerror="window.pwned=1">', flush=True)
      time.sleep(3600)
  memory: 256m
"""

# Selenium's locator strategies (ID, CSS), spelled out so that this module
# imports without selenium and the test can skip saying what is missing.
ID, CSS = "id", "css selector"
INSTANCES = '[data-app="hello"] tr[data-proc="worker"] [data-instance][data-status="RUNNING"]'


def _admin_token(console: Console) -> str:
    """A global admin and a token for it, made with the CLI as an operator would."""

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(_COMMAND), *args],
            env=console._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    cli("user", "add", "ops", "--admin")
    return cli("token", "create", "ops", "--label", "browser test")


def _count(driver: Any, selector: str) -> int:
    return len(driver.find_elements(CSS, selector))


def _text(driver: Any, element_id: str) -> str:
    found = driver.find_elements(ID, element_id)
    return found[0].text if found else ""


async def test_status_page_follows_a_scale_live_and_asks_for_a_token(
    console: Console, tmp_path: Path
) -> None:
    console.extra_env["LAIN_CONSOLE_AUTH"] = "true"
    with chromium() as driver:
        console.start()
        async with httpx.AsyncClient(base_url=console.url, timeout=30) as anonymous:
            await until(lambda: healthy(anonymous))  # migrated: the CLI may use the database
        headers = {"authorization": f"Bearer {_admin_token(console)}"}
        async with httpx.AsyncClient(base_url=console.url, timeout=30, headers=headers) as client:
            await publish_hello(client, TALKER_YAML)
            await graphql(
                client, 'mutation { deployApp(input: {name: "hello"}) { errors { code } } }'
            )

            # Access control is on: the page asks for a token and shows nothing before it.
            driver.get(f"{console.url}/ui/")
            form = await until(lambda: driver.find_element(ID, "token-form").is_displayed())
            assert form
            assert not driver.find_element(ID, "dashboard").is_displayed()
            driver.find_element(ID, "token-input").send_keys("not-a-token\n")
            await until(lambda: "not accepted" in _text(driver, "token-problem"))
            driver.find_element(ID, "token-input").send_keys(headers["authorization"][7:] + "\n")
            await until(lambda: _count(driver, INSTANCES) == 1)
            assert (
                driver.execute_script("return sessionStorage.getItem('lain-console-token')")
                == headers["authorization"][7:]
            )
            await until(lambda: _text(driver, "connection") == "live")

            # Scaled through the API, the new instance shows up by the subscription alone.
            scaled = await graphql(
                client,
                'mutation { scaleProc(input: {app: "hello", proc: "worker", numInstances: 2})'
                " { errors { code message } } }",
            )
            assert scaled["scaleProc"]["errors"] == []
            await until(lambda: _count(driver, INSTANCES) == 2, deadline=30)
            await until(lambda: "instance #2" in _text(driver, "events"))

            # The proc's log tail, followed live.
            driver.find_element(CSS, '[data-app="hello"] [data-logs="worker"]').click()
            await until(lambda: "hello from 2" in _text(driver, "logs"), deadline=30)
            # What an app prints is shown as text, never run as markup.
            payload = '<img src=x onerror="window.pwned=1">'
            await until(lambda: payload in _text(driver, "logs"))
            assert _count(driver, "#logs img") == 0
            assert driver.execute_script("return window.pwned === undefined")
            driver.save_screenshot(str(tmp_path / "status-page.png"))
            # The page lives within its Content-Security-Policy and throws nothing.
            problems = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert [p for p in problems if "not-a-token" not in p and " 401 " not in p] == []

            # This machine cannot reach unpkg.com: GraphiQL says so instead of a blank page.
            driver.get(f"{console.url}/graphql")
            await until(lambda: "GraphiQL could not load" in _text(driver, "graphiql"), deadline=40)
            links = [a.get_attribute("href") for a in driver.find_elements(CSS, "a")]
            assert f"{console.url}/ui/" in links
            assert f"{console.url}/graphql/schema.graphql" in links
            driver.save_screenshot(str(tmp_path / "graphiql-offline.png"))
