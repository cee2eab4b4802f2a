from __future__ import annotations

from lainyaml import LainYamlError, Problem
from lainyaml.errors import ProblemSink
from tests.lainyaml.support import problems_of


def test_problem_str_is_path_then_message() -> None:
    assert str(Problem("procs.web.memory", "bad size")) == "procs.web.memory: bad size"


def test_problem_sink_raises_nothing_when_empty() -> None:
    sink = ProblemSink()
    sink.raise_if_any()
    assert len(sink) == 0


def test_problem_sink_keeps_problems_in_order() -> None:
    sink = ProblemSink()
    sink.add("a", "one")
    sink.extend([Problem("b", "two")])
    assert sink.problems == (Problem("a", "one"), Problem("b", "two"))


def test_problem_sink_caps_the_problems_it_keeps() -> None:
    sink = ProblemSink(limit=2)
    for i in range(5):
        sink.add(f"p{i}", "bad")
    assert len(sink) == 5
    assert [str(p) for p in sink.problems] == [
        "p0: bad",
        "p1: bad",
        "<root>: 3 more problems not shown",
    ]


def test_a_document_with_thousands_of_mistakes_reports_a_bounded_list() -> None:
    text = "appname: hello\nweb:\n  env:\n" + "".join(f"  - bad{i}\n" for i in range(5000))
    found = problems_of(text)
    assert len(found) == 201
    assert found[-1] == "<root>: 4800 more problems not shown"


def test_thousands_of_duplicate_keys_report_a_bounded_list() -> None:
    text = "appname: hello\n" + "".join(f"k: {i}\n" for i in range(3000))
    found = problems_of(text)
    assert len(found) == 201
    assert found[0] == "yaml: line 3, column 1: duplicate key 'k'"


def test_lain_yaml_error_keeps_the_problems_it_was_given() -> None:
    problems = [Problem("a", "x"), Problem("b", "y")]
    assert LainYamlError(problems).problems == tuple(problems)
