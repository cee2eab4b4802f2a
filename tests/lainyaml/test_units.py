from __future__ import annotations

import pytest

from lainyaml import InvalidSize, format_memory, parse_memory, parse_size
from lainyaml.units import MAX_MEMORY_BYTES, MIN_MEMORY_BYTES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32m", 32 * 1024**2),
        ("64m", 64 * 1024**2),
        ("64M", 64 * 1024**2),
        ("128M", 128 * 1024**2),
        ("1g", 1024**3),
        ("2G", 2 * 1024**3),
        ("1.5G", 1610612736),
        ("128 MB", 128 * 1024**2),
        ("128MB", 128 * 1024**2),
        ("2 GiB", 2 * 1024**3),
        ("1024", 1024),
        ("5 kilobytes", 5 * 1024),
        ("  16m  ", 16 * 1024**2),
        ("1 t", 1024**4),
        ("1p", 1024**5),
        ("7 bytes", 7),
        ("1.1m", int(1.1 * 1024**2)),
    ],
)
def test_parse_size_accepts_what_humanfriendly_accepts(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "M", "128a", "-64m", "m64", "64 m 3", "1.2.3m", "64m64m", "x" * 65, "٣m", "1e3m"],
)
def test_parse_size_rejects_unparsable_text(text: str) -> None:
    with pytest.raises(InvalidSize):
        parse_size(text)


@pytest.mark.parametrize("value", [64, 1.5, None, True, b"64m", ["64m"]])
def test_parse_size_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidSize, match="must be a string"):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "0m", "1", "1k", "4095k", "3.99m"])
def test_parse_memory_refuses_sizes_below_the_4_mb_floor_alike(value: str) -> None:
    parse_size(value)  # a size, only too small to be a memory limit
    with pytest.raises(InvalidSize) as refused:
        parse_memory(value)
    assert str(refused.value) == f"{value!r} is below the minimum memory of 4 MB"


def test_parse_memory_takes_the_floor_itself() -> None:
    assert parse_memory("4m") == parse_memory("4096k") == MIN_MEMORY_BYTES == 4 * 1024**2


def test_parse_memory_refuses_limits_beyond_int64() -> None:
    assert parse_memory("8000p") < MAX_MEMORY_BYTES
    with pytest.raises(InvalidSize, match="too large"):
        parse_memory("9999999p")


def test_invalid_size_is_a_value_error() -> None:
    assert issubclass(InvalidSize, ValueError)


@pytest.mark.parametrize(
    ("num_bytes", "expected"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (2, "2 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (33554432, "32 MB"),
        (67108864, "64 MB"),
        (134217728, "128 MB"),
        (100000000, "95.37 MB"),
        (1610612736, "1.5 GB"),
        (1024**3 * 4, "4 GB"),
        (1024**4, "1 TB"),
        (1024**5 * 3, "3 PB"),
        (1024**2 + 1, "1 MB"),
        (int(1.999 * 1024**2), "2 MB"),
        (int(10.1 * 1024**3), "10.1 GB"),
    ],
)
def test_format_memory_matches_humanfriendly_format_size(num_bytes: int, expected: str) -> None:
    assert format_memory(num_bytes) == expected


@pytest.mark.parametrize("value", [-1, True, 1.5, "32m"])
def test_format_memory_rejects_negative_and_non_int(value: object) -> None:
    with pytest.raises(ValueError, match="byte count"):
        format_memory(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["32m", "64M", "1g", "1.5G", "128 MB"])
def test_format_memory_of_parse_memory_round_trips_the_amount(text: str) -> None:
    assert parse_memory(format_memory(parse_memory(text))) == parse_memory(text)
