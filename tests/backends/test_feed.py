from __future__ import annotations

import asyncio

from backends.feed import EventFeed
from backends.types import EventKind


async def _take(feed: EventFeed, after: int | None, count: int) -> list[int]:
    cursors: list[int] = []
    async for event in feed.subscribe(after):
        cursors.append(event.cursor)
        if len(cursors) == count:
            break
    return cursors


async def test_subscribe_replays_history_after_cursor_then_goes_live() -> None:
    feed = EventFeed()
    for _ in range(3):
        feed.publish(EventKind.PROC, "hello.web.web")
    reader = asyncio.create_task(_take(feed, 1, 4))
    await asyncio.sleep(0)
    feed.publish(EventKind.PROC, "hello.web.web")
    feed.publish(EventKind.PROC, "hello.web.web")
    assert await asyncio.wait_for(reader, 5) == [2, 3, 4, 5]


async def test_subscribe_without_cursor_sees_only_new_events() -> None:
    feed = EventFeed()
    feed.publish(EventKind.PROC, "a.web.web")
    reader = asyncio.create_task(_take(feed, None, 1))
    await asyncio.sleep(0)
    feed.publish(EventKind.PROC, "a.web.web")
    assert await asyncio.wait_for(reader, 5) == [2]


async def test_reader_behind_the_history_resumes_at_oldest_held() -> None:
    feed = EventFeed(history=2)
    for _ in range(5):
        feed.publish(EventKind.PROC, "a.web.web")
    assert await asyncio.wait_for(_take(feed, 0, 2), 5) == [4, 5]


async def test_close_ends_readers_after_draining() -> None:
    feed = EventFeed()
    feed.publish(EventKind.PROC, "a.web.web")
    feed.close()
    events = [event.cursor async for event in feed.subscribe(0)]
    assert events == [1]


async def test_many_readers_all_get_each_event_in_order() -> None:
    feed = EventFeed()
    readers = [asyncio.create_task(_take(feed, 0, 3)) for _ in range(50)]
    await asyncio.sleep(0)
    for _ in range(3):
        feed.publish(EventKind.PROC, "a.web.web")
        await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert all(result == [1, 2, 3] for result in results)
