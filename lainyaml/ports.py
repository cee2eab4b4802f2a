"""A proc's `port` (the container port) and `ports` (stream-router mappings)."""

from __future__ import annotations

import re

from lainyaml.checks import describe, show
from lainyaml.errors import ProblemSink
from lainyaml.model import PortMapping, PortSpec, Protocol

__all__ = ["MAX_STREAM_PORT", "MIN_STREAM_PORT", "parse_port", "parse_ports"]

MIN_STREAM_PORT = 9500
MAX_STREAM_PORT = 10000

_DIGITS = re.compile(r"[0-9]{1,5}", re.ASCII)
# "80:tcp" is what the parser reads; "80/tcp" is accepted too, as `ports:` writes protocols so.
_PORT_TEXT = re.compile(r"([0-9]{1,5})[:/](tcp|udp)", re.ASCII)
_PORT_RULE = "an integer 1-65535, '<port>:tcp|udp' or {<port>: ['type:tcp|udp']}"


def _port_number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    return None


def _one_port(value: object, path: str, sink: ProblemSink) -> PortSpec | None:
    if isinstance(value, str):
        match = _PORT_TEXT.fullmatch(value)
        number = _port_number(int(match.group(1))) if match else None
        if match and number is not None:
            return PortSpec(number, Protocol(match.group(2)))
    elif isinstance(value, dict) and len(value) == 1:
        # The parser's dict form: {80: ["type:tcp"]}; only the first option is read.
        ((key, options),) = value.items()
        number = _port_number(key)
        first = options[0] if isinstance(options, list) and options else None
        if number is not None and first in ("type:tcp", "type:udp"):
            return PortSpec(number, Protocol(first.removeprefix("type:")))
    else:
        number = _port_number(value)
        if number is not None:
            return PortSpec(number)
    sink.add(path, f"not supported port desc {show(value)}: must be {_PORT_RULE}")
    return None


def parse_port(value: object, path: str, sink: ProblemSink) -> PortSpec | None:
    """The exposed port; a list is allowed and its first entry wins (every entry is checked).

    Returns None for an empty list or on a problem; the caller applies the web default (80).
    """
    if not isinstance(value, list):
        return _one_port(value, path, sink)
    ports = [_one_port(item, f"{path}[{i}]", sink) for i, item in enumerate(value)]
    return ports[0] if ports else None


def _mapping(key: object, path: str, sink: ProblemSink) -> PortMapping | None:
    """One `"<src>[:<dst>][/<proto>]"` description (an int key means src = dst)."""
    text = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
    if not isinstance(text, str):
        sink.add(path, f"not supported ports desc {show(key)}: must be '<src>:<dst>/<proto>'")
        return None
    ports_part, _, proto = text.partition("/")
    if proto not in ("", "tcp", "udp") or "/" in proto:
        sink.add(path, f"not supported ports desc {show(key)}: protocol must be tcp or udp")
        return None
    numbers = ports_part.split(":")
    if len(numbers) > 2 or not all(_DIGITS.fullmatch(n) for n in numbers):
        sink.add(path, f"not supported ports desc {show(key)}: must be '<src>:<dst>/<proto>'")
        return None
    src, dst = int(numbers[0]), int(numbers[-1])
    if not MIN_STREAM_PORT <= src <= MAX_STREAM_PORT:
        sink.add(path, f"src port should between {MIN_STREAM_PORT} and {MAX_STREAM_PORT}")
        return None
    if not 1 <= dst <= 65535:
        sink.add(path, "dst port should between 1 and 65535")
        return None
    return PortMapping(src, dst, Protocol(proto or "tcp"))


def parse_ports(value: object, path: str, sink: ProblemSink) -> tuple[PortMapping, ...]:
    """Stream-router mappings from a string, a list of strings, or a mapping of them.

    A mapping's values (per-port option maps in LAIN) are accepted when they are mappings or
    null, and dropped: nothing downstream reads them. A list was silently ignored by the old
    parser; here it is read, as the validator documents it.
    """
    if isinstance(value, str | int) and not isinstance(value, bool):
        entries: list[tuple[object, str]] = [(value, path)]
    elif isinstance(value, list):
        entries = [(item, f"{path}[{i}]") for i, item in enumerate(value)]
    elif isinstance(value, dict):
        entries = []
        for key, options in value.items():
            if options is not None and not isinstance(options, dict):
                sink.add(f"{path}.{key}", f"options must be a mapping, not {describe(options)}")
            entries.append((key, f"{path}.{key}"))
    else:
        sink.add(path, f"must be a string, a list or a mapping, not {describe(value)}")
        return ()
    mappings: list[PortMapping] = []
    for key, where in entries:
        mapping = _mapping(key, where, sink)
        if mapping is None:
            continue
        if any(m.src == mapping.src for m in mappings):
            sink.add(where, f"cant bind src port to many dst ports {show(key)}")
            continue
        mappings.append(mapping)
    return tuple(mappings)
