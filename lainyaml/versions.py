"""Release versions: LAIN's `meta_version`, `<unix commit time>-<40-hex commit sha>`.

The lain CLI derives it with `git log -1 --pretty=format:%ct-%H`, so the timestamp is a plain
decimal number of seconds and the sha is lowercase hex. "Latest" means the newest timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["InvalidMetaVersion", "MetaVersion", "newest_first", "parse_meta_version"]

# Up to 12 digits keeps every commit time until the year 33658 and rejects absurd inputs early;
# fewer than 10 digits are valid too (commits before September 2001).
_META_VERSION = re.compile(r"(0|[1-9][0-9]{0,11})-([0-9a-f]{40})", re.ASCII)


class InvalidMetaVersion(ValueError):
    """A string that is not `<unix timestamp>-<40 lowercase hex digits>`."""


@dataclass(frozen=True, slots=True, order=True)
class MetaVersion:
    """A parsed meta_version; ordered by commit time, then sha (so sorting is deterministic)."""

    timestamp: int
    sha: str

    def __str__(self) -> str:
        return f"{self.timestamp}-{self.sha}"


def parse_meta_version(value: str) -> MetaVersion:
    """Parse `<unix timestamp>-<40-hex sha>`, e.g. `1528874349-6f8a…6f70`.

    Raises:
        InvalidMetaVersion: anything else, including phase prefixes such as `release-…`,
            uppercase hex, surrounding whitespace and non-string values.
    """
    if not isinstance(value, str):
        raise InvalidMetaVersion(f"meta_version must be a string, not {type(value).__name__}")
    match = _META_VERSION.fullmatch(value)
    if match is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidMetaVersion(
            f"invalid meta_version {shown!r}: expected <unix timestamp>-<40 lowercase hex digits>"
        )
    return MetaVersion(int(match.group(1)), match.group(2))


def newest_first(versions: Iterable[MetaVersion]) -> list[MetaVersion]:
    """The versions sorted newest commit time first (ties broken by sha, descending)."""
    return sorted(versions, reverse=True)
