"""LAIN's memory sizes, re-exported for the front doors, which import nothing but resolvers."""

from __future__ import annotations

from lainyaml import InvalidSize, format_memory, parse_memory, parse_size

__all__ = ["InvalidSize", "format_memory", "parse_memory", "parse_size"]
