from __future__ import annotations

import pytest

from lainyaml import InvalidMetaVersion, MetaVersion, newest_first, parse_meta_version

SHA = "6f8a0c1e2b3d4f5a6b7c8d9e0f1a2b3c4d5e6f70"


def test_parse_meta_version_reads_timestamp_and_sha() -> None:
    version = parse_meta_version(f"1528874349-{SHA}")
    assert version == MetaVersion(1528874349, SHA)
    assert str(version) == f"1528874349-{SHA}"


def test_parse_meta_version_accepts_short_timestamps() -> None:
    assert parse_meta_version(f"999999999-{SHA}").timestamp == 999999999


@pytest.mark.parametrize(
    "text",
    [
        "",
        SHA,
        "1528874349",
        f"release-1528874349-{SHA}",
        f"meta-1528874349-{SHA}",
        f"1528874349-{SHA.upper()}",
        f"1528874349-{SHA[:-1]}",
        f"1528874349-{SHA}0",
        f" 1528874349-{SHA}",
        f"1528874349-{SHA}\n",
        f"-1528874349-{SHA}",
        f"01528874349-{SHA}",
        f"1528874349_{SHA}",
        f"1528874349-{SHA[:-1]}g",
        f"{'9' * 13}-{SHA}",
        f"١٥٢٨٨٧٤٣٤٩-{SHA}",
    ],
)
def test_parse_meta_version_rejects_other_forms(text: str) -> None:
    with pytest.raises(InvalidMetaVersion, match="meta_version"):
        parse_meta_version(text)


def test_parse_meta_version_rejects_non_strings() -> None:
    with pytest.raises(InvalidMetaVersion):
        parse_meta_version(1528874349)  # type: ignore[arg-type]


def test_parse_meta_version_shortens_a_huge_input_in_its_message() -> None:
    with pytest.raises(InvalidMetaVersion) as info:
        parse_meta_version("x" * 10_000)
    assert len(str(info.value)) < 200


def test_invalid_meta_version_is_a_value_error() -> None:
    assert issubclass(InvalidMetaVersion, ValueError)


def test_meta_versions_order_by_timestamp_then_sha() -> None:
    old = MetaVersion(100, "f" * 40)
    new = MetaVersion(200, "0" * 40)
    assert old < new
    assert MetaVersion(200, "1" * 40) > new


def test_newest_first_sorts_by_timestamp_descending() -> None:
    versions = [parse_meta_version(f"{ts}-{SHA}") for ts in (1500000000, 1600000000, 999)]
    assert [v.timestamp for v in newest_first(versions)] == [1600000000, 1500000000, 999]


def test_newest_first_of_nothing_is_empty() -> None:
    assert newest_first([]) == []


def test_newest_first_compares_numbers_not_strings() -> None:
    # As strings "999..." sorts after "1528..."; as timestamps it is older.
    versions = [parse_meta_version(f"999999999-{SHA}"), parse_meta_version(f"1528874349-{SHA}")]
    assert newest_first(versions)[0].timestamp == 1528874349
