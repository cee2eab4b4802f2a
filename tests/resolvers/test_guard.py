"""The operation guard: users are refused while another operation runs, but wait out the
reconciler's round instead of being told the app is busy with housekeeping."""

from __future__ import annotations

import asyncio

import pytest

from resolvers.core.errors import Conflict
from resolvers.core.guard import RECONCILIATION, OperationGuard

STILL_WAITING = 0.2  # how long a waiting claim is watched to stay waiting


async def _claim_proc(guard: OperationGuard, claimed: asyncio.Event) -> None:
    async with guard.proc("hello", "web", "a scale"):
        claimed.set()


@pytest.mark.parametrize("scope", ["app", "proc"])
async def test_a_user_waits_for_a_reconciliation_round_then_goes_ahead(scope: str) -> None:
    guard = OperationGuard(patience=30)
    claimed = asyncio.Event()

    async def user() -> None:
        if scope == "app":
            async with guard.app("hello", "a deploy"):
                claimed.set()
        else:
            await _claim_proc(guard, claimed)

    async with guard.app("hello", RECONCILIATION):
        waiting = asyncio.create_task(user())
        done, _ = await asyncio.wait({waiting}, timeout=STILL_WAITING)
        assert not done, "the user's claim must wait for the round, not be refused"
    await asyncio.wait_for(waiting, timeout=30)
    assert claimed.is_set()


async def test_a_round_longer_than_the_patience_is_a_conflict() -> None:
    guard = OperationGuard(patience=0.05)
    async with guard.app("hello", RECONCILIATION):
        with pytest.raises(Conflict, match="busy with reconciliation"):
            await _claim_proc(guard, asyncio.Event())


async def test_users_do_not_wait_for_each_other() -> None:
    guard = OperationGuard(patience=30)
    async with guard.app("hello", "a deploy"):
        async with asyncio.timeout(1):
            with pytest.raises(Conflict, match="busy with a deploy"):
                await _claim_proc(guard, asyncio.Event())


async def test_the_reconciler_never_waits() -> None:
    guard = OperationGuard(patience=30)
    async with guard.proc("hello", "web", "a scale"):
        async with asyncio.timeout(1):
            with pytest.raises(Conflict, match="busy with a scale"):
                async with guard.app("hello", RECONCILIATION):
                    pass


class _Locks:
    """Named locks as another console holds them: refused while `held` names them."""

    def __init__(self) -> None:
        self.held: set[str] = set()

    async def try_lock(self, name: str, *, shared: bool = False) -> bool:
        return name not in self.held

    async def unlock(self, name: str, *, shared: bool = False) -> None:
        pass


async def test_a_lock_another_console_holds_is_retried_until_the_patience_runs_out() -> None:
    locks = _Locks()
    locks.held.add("lain-console/app/hello")
    guard = OperationGuard(locks, patience=30)
    claimed = asyncio.Event()
    waiting = asyncio.create_task(_claim_proc(guard, claimed))
    done, _ = await asyncio.wait({waiting}, timeout=STILL_WAITING)
    assert not done
    locks.held.clear()  # the other console's round is over
    await asyncio.wait_for(waiting, timeout=30)
    assert claimed.is_set()

    locks.held.add("lain-console/proc/hello/web")
    impatient = OperationGuard(locks, patience=0.05)
    with pytest.raises(Conflict, match="busy with an operation on another console"):
        await _claim_proc(impatient, asyncio.Event())
