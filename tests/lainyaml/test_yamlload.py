from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import pytest
import yaml

import lainyaml.yamlload
from lainyaml import LainYamlError, parse_lain_yaml
from lainyaml.yamlload import MAX_DEPTH, MAX_NODES, MAX_YAML_BYTES, load_yaml
from tests.lainyaml.support import problems_of


def _only_problem(text: str) -> str:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


def test_load_yaml_reads_a_mapping_in_file_order() -> None:
    assert list(load_yaml("b: 1\na: 2\nc: [x]\n")) == ["b", "a", "c"]


def test_load_yaml_of_empty_text_is_none() -> None:
    assert load_yaml("") is None


def test_syntax_error_names_line_and_column() -> None:
    problem = _only_problem("appname: hello\nweb:\n  cmd: [unclosed\n")
    assert problem.startswith("yaml: line ")
    assert "column" in problem


def test_tab_indentation_is_a_yaml_problem() -> None:
    assert _only_problem("appname: hello\nweb:\n\tcmd: x\n").startswith("yaml: line 3, column 1")


def test_duplicate_top_level_key_is_refused() -> None:
    text = "appname: hello\nweb:\n  cmd: a\nweb:\n  cmd: b\n"
    assert problems_of(text) == ["yaml: line 4, column 1: duplicate key 'web'"]


def test_every_duplicate_key_is_reported_including_nested_ones() -> None:
    text = "appname: a\nappname: b\nweb:\n  cmd: a\n  cmd: b\n"
    assert problems_of(text) == [
        "yaml: line 2, column 1: duplicate key 'appname'",
        "yaml: line 5, column 3: duplicate key 'cmd'",
    ]


def test_keys_equal_after_resolution_are_duplicates() -> None:
    # `yes` and `true` both load as True, so PyYAML would silently keep one of them.
    assert "duplicate key True" in _only_problem("appname: hello\nyes: 1\ntrue: 2\n")


def test_merge_key_overrides_are_not_duplicates() -> None:
    text = (
        "appname: hello\nbase: &base {cmd: run, memory: 64m}\nweb:\n  <<: *base\n  memory: 128m\n"
    )
    assert parse_lain_yaml(text).procs[0].memory == "128m"


def test_anchors_and_aliases_are_allowed_within_the_budget() -> None:
    text = "appname: hello\nx-env: &env [A=1, B=2]\nweb:\n  env: *env\nworker:\n  env: *env\n"
    config = parse_lain_yaml(text)
    assert [p.env for p in config.procs] == [("A=1", "B=2"), ("A=1", "B=2")]


def test_billion_laughs_alias_bomb_is_refused() -> None:
    lines = ["appname: hello", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    problem = _only_problem("\n".join(lines) + "\n")
    assert f"more than {MAX_NODES} nodes" in problem


def test_merge_key_doubling_bomb_is_refused() -> None:
    lines = ["appname: hello", "m0: &m0 {k0: 1, k1: 2}"]
    for i in range(1, 40):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i + 1}: 0}}")
    assert f"more than {MAX_NODES} nodes" in _only_problem("\n".join(lines) + "\n")


def test_recursive_alias_is_refused() -> None:
    assert "refers to itself" in _only_problem("appname: hello\nweb: &a {env: *a}\n")


def test_undefined_alias_is_a_yaml_problem() -> None:
    assert "undefined alias" in _only_problem("appname: hello\nweb: *nothing\n")


def test_deep_flow_nesting_is_refused() -> None:
    depth = MAX_DEPTH + 1
    problem = _only_problem("appname: hello\nx: " + "[" * depth + "]" * depth + "\n")
    assert f"deeper than {MAX_DEPTH}" in problem


def test_very_deep_nesting_is_refused_without_recursion_error() -> None:
    problem = _only_problem("appname: hello\nx: " + "[" * 200_000 + "\n")
    assert problem.startswith("yaml: ")


def test_deep_block_nesting_is_refused() -> None:
    text = "appname: hello\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 2))
    assert f"deeper than {MAX_DEPTH}" in _only_problem(text + "  " * (MAX_DEPTH + 2) + "v\n")


def test_oversized_document_is_refused_before_parsing() -> None:
    text = "appname: hello\n# " + "x" * MAX_YAML_BYTES + "\n"
    assert _only_problem(text) == f"yaml: document larger than {MAX_YAML_BYTES} bytes"


def test_size_limit_counts_utf8_bytes() -> None:
    text = "appname: hello\n# " + "é" * (MAX_YAML_BYTES // 2) + "\n"
    assert "larger than" in _only_problem(text)


def test_nul_character_is_refused() -> None:
    assert _only_problem("appname: hello\x00\n") == "yaml: text contains a NUL character"


def test_lone_surrogate_is_refused() -> None:
    assert "lone surrogate" in _only_problem("appname: hello\ud800\n")


def test_control_characters_are_a_yaml_problem() -> None:
    assert _only_problem("appname: hello\x07\n").startswith("yaml: ")


def test_non_string_input_is_a_lain_yaml_error() -> None:
    with pytest.raises(LainYamlError, match="must be text, not bytes"):
        parse_lain_yaml(b"appname: hello\n")  # type: ignore[arg-type]


def test_several_documents_are_refused() -> None:
    assert "single document" in _only_problem("appname: a\n---\nappname: b\n")


def test_python_tags_are_refused() -> None:
    problem = _only_problem("appname: !!python/object/apply:os.system [ls]\n")
    assert "could not determine a constructor" in problem


@pytest.mark.parametrize(
    "value", ["2020-13-45", "!!int abc", "!!float x", "!!binary 'abc'", "!!timestamp nope"]
)
def test_values_that_fail_to_construct_are_yaml_problems(value: str) -> None:
    assert _only_problem(f"appname: hello\nx: {value}\n").startswith("yaml: ")


def test_huge_integer_literal_is_a_yaml_problem() -> None:
    assert "cannot load value" in _only_problem("appname: hello\nx: " + "9" * 5000 + "\n")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", "null"),
        ("# only a comment\n", "null"),
        ("- appname: hello\n", "a list"),
        ("hello\n", "a string"),
        ("42\n", "an integer"),
    ],
)
def test_document_that_is_not_a_mapping_is_a_root_problem(text: str, kind: str) -> None:
    assert _only_problem(text) == f"<root>: lain.yaml must be a mapping, not {kind}"


def test_byte_order_mark_is_accepted() -> None:
    assert parse_lain_yaml("\ufeffappname: hello\n").appname == "hello"


@pytest.fixture
def pure_python_loader(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """lainyaml.yamlload rebuilt as on a PyYAML without libyaml (reloading reuses its globals)."""
    monkeypatch.delattr(yaml, "CSafeLoader")
    module = importlib.reload(lainyaml.yamlload)
    yield module
    monkeypatch.undo()
    importlib.reload(lainyaml.yamlload)


def test_pure_python_loader_applies_the_same_guards(pure_python_loader: ModuleType) -> None:
    assert pure_python_loader._BaseLoader is yaml.SafeLoader
    assert "deeper than" in _only_problem("appname: hello\nx: " + "[" * 100_000 + "\n")
    assert "duplicate key" in _only_problem("appname: a\nappname: b\n")
    assert "refers to itself" in _only_problem("appname: a\nx: &a [*a]\n")
    assert parse_lain_yaml("appname: hello\nweb: {cmd: run}\n").procs[0].cmd == ("run",)


def test_c_loader_is_used_when_available() -> None:
    assert lainyaml.yamlload._BaseLoader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
