from __future__ import annotations

import pytest

from lainyaml.templates import TemplateFailure, render_template

DOUBLING = (
    "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}"
)


@pytest.mark.parametrize(
    "source",
    [
        DOUBLING,
        "{{ (['a' * 60000] * 1000)|join }}",
        "{{ 'aaaa'|replace('a', 'b' * 60000) }}",
        "{{ '%999999999s' % 'x' }}",
        "{{ '%*s' % (999999999, 'x') }}",
        "{{ '{:>{w}}'.format('x', w=10**9) }}",
        "{{ ['x'] * 100000 }}",
        "{{ 'x' * 40000 + 'y' * 40000 }}",
        "{{ 99**99 * 99**99 * 99**99 * 99**99 * 99**99 * 99**99 * 99**99 }}",
        "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{% for c in 'x' * 60000 %}{% for d in 'y' * 60000 %}{% endfor %}{% endfor %}",
    ],
)
def test_what_would_grow_without_bound_is_refused(source: str) -> None:
    with pytest.raises(TemplateFailure, match="larger than a resource template may build"):
        render_template(source, {})


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("{{ n|default(2)|int(2) }}", "2"),
        ("{{ 2**10 }} {{ 'ab' * 3 }} {{ [1] + [2] }}", "1024 ababab [1, 2]"),
        ("{{ '%s=%d'|format('a', 3) }} {{ '%5s' % 'a' }}", "a=3     a"),
        ("{{ '{}-{}'.format(1, 2) }} {{ 'a b'|replace(' ', '-') }}", "1-2 a-b"),
        ("{{ ['a', 'b']|join(',') }}{{ 'x' ~ 1 }}", "a,bx1"),
        ("{% for i in range(5) if i is odd %}{{ i }}{% else %}-{% endfor %}", "13"),
        ("{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}", "a=1"),
    ],
)
def test_ordinary_templates_render(source: str, rendered: str) -> None:
    assert render_template(source, {}) == rendered


def test_a_failure_names_its_line() -> None:
    with pytest.raises(TemplateFailure) as raised:
        render_template("a\nb\n{{ 1 / 0 }}", {})
    assert (
        raised.value.describe() == "template error at line 3: ZeroDivisionError: division by zero"
    )
