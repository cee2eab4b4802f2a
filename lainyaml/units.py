"""Memory sizes the way LAIN reads and prints them.

The old console used humanfriendly 1.29 for both directions: `parse_size` to turn lain.yaml's
`memory` into bytes, `format_size` to show a deployed limit. Both are reproduced here (the package
itself is not a dependency): sizes are 1024-based whatever the unit says, and the unit is matched
on its first letter only.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MAX_MEMORY_BYTES",
    "MIN_MEMORY_BYTES",
    "InvalidSize",
    "format_memory",
    "parse_memory",
    "parse_size",
]

# Schedulers keep limits in signed 64-bit integers; anything above cannot be a real limit.
MAX_MEMORY_BYTES = 2**63 - 1
# Below this hardly any process starts (a CPython needs tens of MB of address space just to
# start): a smaller limit is a typo, "1" meant as 1 GB or "0" as "no limit".
MIN_MEMORY_BYTES = 4 * 1024**2

# A size is a short string; the cap also keeps int() away from Python's digit limit.
_MAX_SIZE_TEXT = 64

# (first letter of the unit, multiplier, label) as in humanfriendly 1.29's `disk_size_units`.
_UNITS: tuple[tuple[str, int, str], ...] = (
    ("b", 1, "bytes"),
    ("k", 1024**1, "KB"),
    ("m", 1024**2, "MB"),
    ("g", 1024**3, "GB"),
    ("t", 1024**4, "TB"),
    ("p", 1024**5, "PB"),
)

# humanfriendly's tokenizer: numbers are `\d+(\.\d+)?`; ASCII only here, because Python's `\d`
# and int() also accept other scripts' digits, which LAIN (Python 2 byte strings) never did.
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)", re.ASCII)


class InvalidSize(ValueError):
    """A size string that humanfriendly would not parse (or, for memory, not a usable limit)."""


def _tokenize(text: str) -> list[int | float | str]:
    tokens: list[int | float | str] = []
    for raw in _NUMBER.split(text):
        token = raw.strip()
        if not token:
            continue
        if _NUMBER.fullmatch(token):
            tokens.append(float(token) if "." in token else int(token))
        else:
            tokens.append(token)
    return tokens


def parse_size(value: str) -> int:
    """Bytes in a human size string, exactly as humanfriendly 1.29 `parse_size` reads it.

    `"1024"` is bytes; `"64m"`, `"64M"`, `"128 MB"`, `"2 GiB"`, `"1.5G"` are 1024-based (the unit
    is matched on its first letter, so `"5 megs"` is 5 MB too). Zero is accepted.

    Raises:
        InvalidSize: not a string, empty, no leading number, an unknown unit, extra tokens.
    """
    if not isinstance(value, str):
        raise InvalidSize(f"a size must be a string such as '64m', not {type(value).__name__}")
    if len(value) > _MAX_SIZE_TEXT:
        raise InvalidSize(f"size is too long ({len(value)} characters)")
    tokens = _tokenize(value)
    if tokens and not isinstance(tokens[0], str):
        number = tokens[0]
        if len(tokens) == 1:
            return int(number)
        unit = tokens[1]
        if len(tokens) == 2 and isinstance(unit, str):
            for prefix, multiplier, _label in _UNITS:
                if unit.lower().startswith(prefix):
                    # Float arithmetic on purpose: "1.1m" must truncate like humanfriendly does.
                    return int(number * multiplier)
    raise InvalidSize(f"cannot parse size {value!r}: expected a number and a unit such as '64m'")


def parse_memory(value: str) -> int:
    """Bytes of a memory limit written as LAIN accepts it (see `parse_size`), at least 4 MB.

    Raises:
        InvalidSize: not a size string, below `MIN_MEMORY_BYTES`, above `MAX_MEMORY_BYTES`.
    """
    size = parse_size(value)
    if size < MIN_MEMORY_BYTES:
        raise InvalidSize(f"{value!r} is below the minimum memory of 4 MB")
    if size > MAX_MEMORY_BYTES:
        raise InvalidSize(f"memory {value!r} is too large")
    return size


def _round_number(number: float) -> str:
    # humanfriendly's round_number: two decimals, then trailing zeros and a bare dot dropped.
    text = f"{number:.2f}"
    return re.sub(r"\.$", "", re.sub(r"0+$", "", text))


def format_memory(num_bytes: int) -> str:
    """A byte count as humanfriendly 1.29 `format_size` prints it.

    `33554432 -> "32 MB"`, `1610612736 -> "1.5 GB"`, `100000000 -> "95.37 MB"`, `1 -> "1 byte"`,
    `0 -> "0 bytes"`, `1023 -> "1023 bytes"`.

    Raises:
        ValueError: a negative count or something that is not an int.
    """
    if isinstance(num_bytes, bool) or not isinstance(num_bytes, int):
        raise ValueError(f"a byte count must be an int, not {type(num_bytes).__name__}")
    if num_bytes < 0:
        raise ValueError(f"a byte count cannot be negative: {num_bytes}")
    for _prefix, multiplier, label in reversed(_UNITS):
        if num_bytes >= multiplier:
            try:
                number = _round_number(num_bytes / multiplier)
            except OverflowError:
                raise ValueError(f"a byte count too large to format: {num_bytes}") from None
            if multiplier == 1 and math.floor(float(number)) == 1:
                return f"{number} byte"
            return f"{number} {label}"
    return f"{num_bytes} bytes"
