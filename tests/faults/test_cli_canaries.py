"""The CLI's canary rollout, against a console on (fake) Nomad: `deploy --canary N --wait`
returns once the canaries are healthy and wait, `app` says so, `promote` lets Nomad replace
the rest. The CLI runs as a user runs it: the `lain-console` command, in its own process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.backends.nomad.helpers import wait_until
from tests.e2e.console import _COMMAND
from tests.faults.helpers import Console
from tests.releases import V1, V2

_SECONDS = 120


async def _cli(console: Console, home: Path, *args: str) -> tuple[int, str, str]:
    """Run `lain-console ARGS` against `console`; its exit status, stdout and stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LAIN_CONSOLE_", "XDG_"))}
    child = await asyncio.create_subprocess_exec(
        str(_COMMAND),
        *args,
        env=environ | {"HOME": str(home), "LAIN_CONSOLE_URL": console.base_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_SECONDS):
            out, err = await child.communicate()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def _running_releases(console: Console) -> dict[str, list[str]]:
    data = await console.graphql('{ app(name: "hello") { procs { name runningReleases } } }')
    return {proc["name"]: proc["runningReleases"] for proc in data["app"]["procs"]}


async def test_deploy_with_canaries_waits_for_them_and_promote_replaces_the_rest(
    console: Console, tmp_path: Path
) -> None:
    # Canaries go beside a running release: on an app not deployed, the client says so and
    # sends nothing.
    status, _, err = await _cli(console, tmp_path, "deploy", "hello", "--canary", "1")
    assert status != 0
    assert "error: INVALID: --canary: hello is not deployed" in err
    assert (await console.app())["status"] == "UNDEPLOYED"

    await console.ok("deployApp", name="hello", metaVersion=V1)
    await console.settle()
    # Three web instances: a canary takes the slot (Nomad's alloc index) of an old one.
    await console.ok("scaleProc", app="hello", proc="web", numInstances=3)
    await console.settle()
    console.nomad.auto_settle = 0.05  # the cluster moves by itself while the CLI waits

    status, _, err = await _cli(
        console, tmp_path, "deploy", "hello", "--release", V2, "--canary", "1", "--wait"
    )
    assert status == 0, err
    assert "canaries of web, jobs are healthy and wait for a promotion" in err, err
    assert "lain-console promote hello" in err
    assert await _running_releases(console) == {"web": [V1, V2], "jobs": [V1, V2]}

    status, out, err = await _cli(console, tmp_path, "app", "hello")
    assert status == 0, err
    assert "canaries of web: 1/1 healthy, waiting for a promotion" in out
    assert "(lain-console promote hello web)" in out

    status, _, err = await _cli(console, tmp_path, "promote", "hello")
    assert status == 0, err
    assert "promoted the canaries of hello" in err

    async def replaced() -> bool:
        return await _running_releases(console) == {"web": [V2], "jobs": [V2]}

    await wait_until(replaced, within=_SECONDS, message="the other instances replaced")

    # Nothing waits any more: a second promotion is refused, with the console's reason.
    status, _, err = await _cli(console, tmp_path, "promote", "hello", "web")
    assert status != 0
    assert "error: CONFLICT:" in err
