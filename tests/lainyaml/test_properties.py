"""Property tests: parse_lain_yaml raises nothing but LainYamlError, whatever it is given."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lainyaml import (
    LainConfig,
    LainYamlError,
    MetaVersion,
    format_memory,
    parse_lain_yaml,
    parse_meta_version,
    parse_size,
)
from lainyaml.procs import PROC_FIELDS
from tests.lainyaml.support import data_text

# No example database: the tests must not write files into the repository.
EXAMPLES = settings(deadline=None, max_examples=300, database=None)

_FIELD_NAMES = [
    *sorted(PROC_FIELDS), "appname", "apptype", "build", "base", "script", "portal", "use_services",
    "use_resources", "services", "notify", "web", "worker.x", "proc.y", "service.z",
    "portal.p", "web.a.b", "backup_full", "schedule", "options", "dirs",
]  # fmt: skip
_YAMLISH = "abcwebportal-_.:/{}[]&*!|>'\"#%@`,?=~ \n\t0123456789"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["32m", "1.5G", "9500:80/udp", "80:tcp", "/lain", "{{ x }}", "type:udp"]),
    st.sampled_from(_FIELD_NAMES),
)
keys = st.one_of(st.sampled_from(_FIELD_NAMES), st.text(max_size=10), st.integers(0, 70000))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=30,
)
documents = st.dictionaries(keys, values, max_size=8)


def _check(text: str, **kwargs: Any) -> None:
    """Parse; any exception other than LainYamlError fails the test by propagating."""
    error: LainYamlError | None = None
    try:
        config = parse_lain_yaml(text, **kwargs)
    except LainYamlError as exc:
        error = exc
    if error is None:
        assert isinstance(config, LainConfig)
        assert config.text == text
    else:
        assert error.problems
        assert all(p.path and p.message for p in error.problems)
        assert str(error) == "\n".join(str(p) for p in error.problems)


def _base_documents() -> list[dict[str, Any]]:
    names = ["hello.yaml", "for_validate.yaml", "redis_resource.yaml", "redis_client.yaml"]
    return [yaml.safe_load(data_text(name)) for name in names]


_BASES = _base_documents()


@EXAMPLES
@given(st.text())
def test_random_text_only_raises_lain_yaml_error(text: str) -> None:
    _check(text)


@EXAMPLES
@given(st.text(alphabet=_YAMLISH, max_size=200))
def test_yaml_like_text_only_raises_lain_yaml_error(text: str) -> None:
    _check(text)


@EXAMPLES
@given(documents, st.booleans())
def test_random_yaml_structures_only_raise_lain_yaml_error(
    document: dict[Any, Any], with_appname: bool
) -> None:
    if with_appname:
        document = {"appname": "hello", **document}
    _check(yaml.safe_dump(document, sort_keys=False))


@EXAMPLES
@given(
    st.sampled_from(range(len(_BASES))),
    st.data(),
    values,
    st.lists(st.text(max_size=12), max_size=3),
)
def test_mutated_valid_documents_only_raise_lain_yaml_error(
    base: int, data: st.DataObject, value: Any, domains: list[str]
) -> None:
    document = yaml.safe_load(yaml.safe_dump(_BASES[base]))
    target: Any = document
    # Walk down a random path of mappings and replace the value at its end.
    while True:
        key = data.draw(st.sampled_from(sorted(target, key=str)))
        if isinstance(target[key], dict) and target[key] and data.draw(st.booleans()):
            target = target[key]
            continue
        target[key] = value
        break
    _check(yaml.safe_dump(document, sort_keys=False), domains=domains)


@EXAMPLES
@given(st.sampled_from(range(len(_BASES))), st.integers(0, 2000), st.text(alphabet=_YAMLISH))
def test_corrupted_example_text_only_raises_lain_yaml_error(
    base: int, position: int, insert: str
) -> None:
    text = yaml.safe_dump(_BASES[base], sort_keys=False)
    position %= len(text)
    _check(text[:position] + insert + text[position + len(insert) // 2 :])


@EXAMPLES
@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_format_memory_output_parses_back_close_to_the_input(num_bytes: int) -> None:
    text = format_memory(num_bytes)
    if num_bytes == 0:
        assert text == "0 bytes"
        return
    parsed = parse_size(text)
    # Two decimals of the unit: the error is at most half a hundredth of that unit.
    assert abs(parsed - num_bytes) <= max(1, num_bytes // 150)


@EXAMPLES
@given(st.integers(min_value=0, max_value=10**30))
def test_parse_size_reads_plain_byte_counts(num_bytes: int) -> None:
    assert parse_size(str(num_bytes)) == num_bytes


@EXAMPLES
@given(st.integers(0, 10**12 - 1), st.text(alphabet="0123456789abcdef", min_size=40, max_size=40))
def test_meta_version_round_trips(timestamp: int, sha: str) -> None:
    version = MetaVersion(timestamp, sha)
    assert parse_meta_version(str(version)) == version
