"""The status page during a canary rollout on (fake) Nomad, in a real browser: it says the
canaries are healthy and wait for a promotion, which releases serve meanwhile, and drops
both once a promotion has replaced the rest, by the subscription alone."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.backends.nomad.helpers import wait_until
from tests.e2e.browser import chromium
from tests.faults.helpers import Console
from tests.releases import V1, V2

WEB = '[data-app="hello"] tr[data-proc="web"]'


async def _text(driver: Any, selector: str) -> str:
    """What the elements matching `selector` show, read in one script: the page re-renders
    an app on every event, so an element found by one call may be gone at the next. The
    console serves the page from this test's event loop, so the browser is called from a
    thread, or the page would wait on a blocked loop."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText).join(' ')"
    return str(await asyncio.to_thread(driver.execute_script, script, selector))


async def test_the_status_page_shows_canaries_waiting_then_promoted(console: Console) -> None:
    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()
    await console.ok("scaleProc", app="hello", proc="web", numInstances=3)
    await console.settle()
    with chromium() as driver:
        await asyncio.to_thread(driver.get, f"{console.base_url}/ui/")

        async def live() -> bool:
            return await _text(driver, "#connection") == "live" and bool(await _text(driver, WEB))

        await wait_until(live, within=30, message="the page shows hello, subscribed")

        await console.ok("updateApp", name="hello", metaVersion=V2, canary={"instances": 1})
        await console.settle()

        async def waiting() -> bool:
            return await _text(driver, f"{WEB} [data-canary]") == (
                "canaries 1/1 healthy · waiting for a promotion"
            )

        await wait_until(waiting, within=30, message="the canary shown waiting")
        assert await _text(driver, f"{WEB} [data-releases]") == f"serving {V1}, {V2}"

        await console.ok("promoteApp", name="hello")
        await console.settle()

        async def replaced() -> bool:
            return not await _text(driver, f"{WEB} [data-canary], {WEB} [data-releases]")

        await wait_until(replaced, within=30, message="the rollout line gone after the promotion")
        running = await _text(driver, f'{WEB} [data-instance][data-status="RUNNING"]')
        assert running.count("RUNNING") == 3, running
