"""What a read answer depends on, as one comparable value: the key read caches version by.

A read of the console is a function of three things, and each has a counter that moves,
by the time the change is visible, with every change of it:

| part              | what changes it                                | counter                  |
|-------------------|------------------------------------------------|--------------------------|
| the database      | any committed write, on any console            | the `state_version` row  |
| running state     | the scheduler's tracked state (this console's) | `Scheduler.state_version`|
| instance histories| events this console has taken in from the log  | `EventBus.cursor`        |

Read all three before the data: a read then never pairs an older answer with a newer
version (it may pair a newer answer with an older one, which only costs a miss later).
"""

from __future__ import annotations

from dataclasses import dataclass

from resolvers.core.context import Services
from store.stateversion import read_state_version

__all__ = ["ReadVersion", "read_version"]


@dataclass(frozen=True, slots=True)
class ReadVersion:
    stored: int
    scheduler: int
    events: int


async def read_version(services: Services) -> ReadVersion | None:
    """The version now; None when some part cannot vouch for its answers (nothing may be
    cached or served from a cache then)."""
    scheduler = services.scheduler.state_version
    if scheduler is None:
        return None
    events = services.bus.cursor
    async with services.sessions() as session:
        stored = await read_state_version(session)
    if stored is None:
        return None
    return ReadVersion(stored=stored, scheduler=scheduler, events=events)
