"""Instance output in GraphQL: `Instance.logs` and the `logs` subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry

from resolvers import logs
from schema.errors import raise_as_graphql

__all__ = ["LogEntry", "LogLine", "LogStream", "follow_logs", "instance_logs"]


@strawberry.enum(description="Which output of an instance.")
class LogStream(Enum):
    STDOUT = "stdout"
    STDERR = "stderr"
    BOTH = "both"


@strawberry.type(description="One line an instance printed.")
class LogLine:
    time: datetime | None = strawberry.field(
        description="When the console read it (UTC); null where the scheduler cannot know."
    )
    instance: int
    stream: LogStream
    text: str = strawberry.field(
        description="Invalid UTF-8 shows as U+FFFD; a line over 16 KB is cut and marked."
    )

    @classmethod
    def from_line(cls, line: logs.LogLine) -> LogLine:
        return cls(
            time=line.time, instance=line.instance, stream=LogStream(line.stream), text=line.text
        )


@strawberry.type(description="A followed line, or a marker for lines this reader missed.")
class LogEntry:
    line: LogLine | None = strawberry.field(description="Null for a marker.")
    dropped_lines: int = strawberry.field(
        description="Lines not delivered here because this reader was too slow (a marker)."
    )
    cursor: str = strawberry.field(description="Pass as `after` to resume after this entry.")

    @classmethod
    def from_followed(cls, followed: logs.FollowedLog) -> LogEntry:
        item = followed.item
        if isinstance(item, logs.LogsDropped):
            return cls(line=None, dropped_lines=item.count, cursor=followed.cursor)
        return cls(line=LogLine.from_line(item), dropped_lines=0, cursor=followed.cursor)


def _stream(choice: LogStream) -> logs.LogStream | None:
    return None if choice is LogStream.BOTH else logs.LogStream(choice.value)


async def instance_logs(
    info: strawberry.Info, app: str, proc: str, number: int, tail: int, stream: LogStream
) -> list[LogLine]:
    with raise_as_graphql():
        lines = await logs.tail_logs(
            info.context.op, app=app, proc=proc, instance=number, tail=tail, stream=_stream(stream)
        )
    return [LogLine.from_line(line) for line in lines]


async def follow_logs(
    info: strawberry.Info,
    app: str,
    proc: str,
    instance: int | None = None,
    tail: int = 100,
    after: str | None = None,
) -> AsyncGenerator[LogEntry]:
    with raise_as_graphql():
        followed = await logs.follow_logs(
            info.context.op, app=app, proc=proc, instance=instance, tail=tail, after=after
        )
    async for batch in followed:
        for item in batch.with_cursors():
            yield LogEntry.from_followed(item)
