"""Reads shared by every live subscriber that asks for the same thing at the same moment."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from resolvers.core.events import EventSnapshot

__all__ = ["SharedReads", "WatchReads"]

_KEPT = 256  # keys whose shared reads are remembered
V = TypeVar("V")


class SharedReads(Generic[V]):
    """One read per key, shared by every subscriber asking for it: a change watched by a
    thousand clients must not cost a thousand times the same queries. Keys carry the event's
    cursor, so each event is read (and each access checked) afresh."""

    def __init__(self) -> None:
        self._taken: OrderedDict[Hashable, asyncio.Future[V]] = OrderedDict()

    async def get(self, key: Hashable, read: Callable[[], Awaitable[V]]) -> V:
        taken = self._taken.get(key)
        if taken is None:
            taken = asyncio.ensure_future(read())
            self._taken[key] = taken
            while len(self._taken) > _KEPT:
                self._taken.popitem(last=False)
        return await asyncio.shield(taken)


@dataclass(frozen=True, slots=True)
class WatchReads:
    """The subscriptions' shared reads, owned by the app's services (one set per console)."""

    snapshots: SharedReads[EventSnapshot] = field(default_factory=SharedReads)
    checks: SharedReads[None] = field(default_factory=SharedReads)
