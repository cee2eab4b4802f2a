"""Turning untrusted lain.yaml text into plain Python data, safely.

This is the one seam where PyYAML's exceptions become `LainYamlError`. Guards, in order:

- the text is a str of at most `MAX_YAML_BYTES` UTF-8 bytes, without NUL or lone surrogates;
- a first pass over the parser's events counts nodes *with aliases expanded* and nesting depth,
  and refuses a document over `MAX_NODES` or `MAX_DEPTH` before anything is built. That stops
  "billion laughs" alias bombs, merge-key (`<<`) doubling and recursive anchors (`&a [*a]`),
  while ordinary anchors and merges still work;
- the loader refuses duplicate mapping keys (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)
from yaml.nodes import MappingNode, ScalarNode

from lainyaml.checks import show
from lainyaml.errors import LainYamlError, Problem, ProblemSink

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_YAML_BYTES", "load_yaml"]

MAX_YAML_BYTES = 512 * 1024
MAX_NODES = 100_000
# Real lain.yaml files nest about six levels; 64 leaves room and keeps the pure-Python
# composer far below the interpreter's recursion limit.
MAX_DEPTH = 64

_PATH = "yaml"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _where(mark: Any) -> str:
    if mark is None:
        return ""
    return f"line {mark.line + 1}, column {mark.column + 1}: "


class _Refused(Exception):
    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(_where(mark) + message)


class _StrictLoader(_BaseLoader):  # type: ignore[misc]  # CSafeLoader or SafeLoader: Any
    """SafeLoader (C when available) that records duplicate keys instead of overwriting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[Problem] = []
        self._checked: set[int] = set()

    def flatten_mapping(self, node: MappingNode) -> None:
        # Checked here, before the first flattening, because flattening rewrites node.value
        # with merged entries that may legitimately repeat a key (`<<: *base` then an override).
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._check_duplicates(node)
        super().flatten_mapping(node)

    def _check_duplicates(self, node: MappingNode) -> None:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            # Merge keys and complex keys are left to PyYAML.
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                where = _where(key_node.start_mark)
                self.duplicates.append(Problem(_PATH, f"{where}duplicate key {show(key)}"))
            seen.add(key)


@dataclass(slots=True)
class _Frame:
    start_total: int
    anchor: str | None
    height: int = 0  # tallest child so far


@dataclass(slots=True)
class _Budget:
    """Expanded size and height of every node, counted from parser events alone."""

    total: int = 0
    stack: list[_Frame] = field(default_factory=list)
    # The latest definition of each anchor: its open frame, or (size, height) once complete.
    anchors: dict[str, _Frame | tuple[int, int]] = field(default_factory=dict)

    def feed(self, event: Any) -> None:
        if isinstance(event, AliasEvent):
            self._alias(event)
        elif isinstance(event, ScalarEvent):
            self._add(1, 0, event)
            if event.anchor is not None:
                self.anchors[event.anchor] = (1, 0)
        elif isinstance(event, CollectionStartEvent):
            if len(self.stack) + 1 > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
            self._add(1, 0, event)
            frame = _Frame(self.total - 1, event.anchor)
            self.stack.append(frame)
            if event.anchor is not None:
                self.anchors[event.anchor] = frame
        elif isinstance(event, CollectionEndEvent):
            self._close()

    def _close(self) -> None:
        frame = self.stack.pop()
        height = frame.height + 1
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, height)
        # A later node may have reused the anchor name meanwhile; then that one is current.
        if frame.anchor is not None and self.anchors.get(frame.anchor) is frame:
            self.anchors[frame.anchor] = (self.total - frame.start_total, height)

    def _alias(self, event: AliasEvent) -> None:
        # An unknown anchor is reported by the composer with its own message.
        definition = self.anchors.get(event.anchor or "", (1, 0))
        if isinstance(definition, _Frame):
            raise _Refused(f"alias *{event.anchor} refers to itself", event.start_mark)
        size, height = definition
        if len(self.stack) + height > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        self._add(size, height, event)

    def _add(self, size: int, height: int, event: NodeEvent) -> None:
        self.total += size
        if self.total > MAX_NODES:
            raise _Refused(
                f"document too large: more than {MAX_NODES} nodes with aliases expanded",
                event.start_mark,
            )
        if self.stack:
            self.stack[-1].height = max(self.stack[-1].height, height)


def _check_events(text: str) -> None:
    loader = _BaseLoader(text)
    budget = _Budget()
    try:
        while loader.check_event():
            budget.feed(loader.get_event())
    finally:
        loader.dispose()


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise _Refused(f"lain.yaml must be text, not {type(text).__name__}")
    if len(text) > MAX_YAML_BYTES:
        raise _Refused(f"document larger than {MAX_YAML_BYTES} bytes")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _Refused("text is not valid Unicode (lone surrogate)") from None
    if size > MAX_YAML_BYTES:
        raise _Refused(f"document larger than {MAX_YAML_BYTES} bytes")
    if "\x00" in text:
        raise _Refused("text contains a NUL character")
    return text


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        return _where(mark) + (", ".join(parts) or "invalid YAML")
    return str(exc) or "invalid YAML"


def load_yaml(text: str) -> Any:
    """The data of a single YAML document (None when empty).

    Raises:
        LainYamlError: with path `yaml`, for every reason the text cannot be loaded safely.
    """
    try:
        _check_events(_check_text(text))
        loader = _StrictLoader(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _Refused as exc:
        raise LainYamlError([Problem(_PATH, str(exc))]) from None
    except yaml.YAMLError as exc:
        raise LainYamlError([Problem(_PATH, _yaml_message(exc))]) from None
    except Exception as exc:
        # SafeConstructor lets plain exceptions through for scalars that look typed but are
        # not: ValueError for `2020-13-45` (resolved as a timestamp) or `!!int abc`,
        # AttributeError for `!!timestamp nope`. Untrusted text must not get past this seam.
        raise LainYamlError([Problem(_PATH, f"cannot load value: {exc}")]) from None
    duplicates = ProblemSink()
    duplicates.extend(loader.duplicates)
    duplicates.raise_if_any()
    return data
