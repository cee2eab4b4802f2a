"""The jinja2 sandbox resource templates render in: no Python internals, bounded sizes.

The template's author (a resource's maintainer) is not the client's owner, and rendering
runs inside the console, so besides jinja2's sandbox (no attribute access to internals)
every way of making something large from something small is capped: `*` and `**`, `+`,
`%` and `~` on strings, `range`, the filters that widen or repeat text, and the whole
output; and the loops of one render share a budget of rounds, so nesting them cannot
spend minutes of CPU. A cap that is hit is a SecurityError, a TemplateError like any
other. Pure, no I/O.
"""

from __future__ import annotations

import contextvars
import re
import traceback
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_format, do_indent, do_replace, do_wordwrap
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_ITEMS", "MAX_TEXT", "TemplateFailure", "render_template"]

MAX_TEXT = 64 * 1024  # characters in any string a template builds, and in its output
MAX_ITEMS = 10_000  # items of a range or a repeated list
MAX_ITERATIONS = 100_000  # loop rounds in one render, all loops together
_MAX_INT_BITS = 4096  # integers beyond this many bits are refused (10**1233 or so)
# A width or precision in a %-format: "%99999999s" would allocate gigabytes.
_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d{6,})|%[-#0 +]*\d*\.(\*|\d{6,})")
# The same in a str.format field: "{:>99999999}".
_FIELD_WIDTH = re.compile(r"\{[^{}]*:[^{}]*?\d{6,}")


class TemplateFailure(Exception):
    """Rendering failed; `line` is the template's line (from 1) where it did, if known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line

    def describe(self) -> str:
        where = f" at line {self.line}" if self.line is not None else ""
        return f"template error{where}: {self}"


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} is larger than a resource template may build")


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise _too_big("the number")
    return value


def _check_text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise _too_big(f"a string of {len(text)} characters")
    return text


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before computing it, a result that would be too large."""
    if operator == "**" and isinstance(left, int) and isinstance(right, int):
        if abs(left) > 1 and right * abs(left).bit_length() > _MAX_INT_BITS:
            raise _too_big(f"{left} ** {right}")
    elif operator == "*":
        for sequence, count in ((left, right), (right, left)):
            length = _size(sequence)
            if length is not None and isinstance(count, int):
                limit = MAX_TEXT if isinstance(sequence, str) else MAX_ITEMS
                if length * count > limit:
                    raise _too_big(f"a sequence repeated {count} times")
        both_ints = isinstance(left, int) and isinstance(right, int)
        if both_ints and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise _too_big("the product")
    elif operator == "+":
        left_size, right_size = _size(left), _size(right)
        if left_size is not None and right_size is not None and left_size + right_size > MAX_TEXT:
            raise _too_big("the sum")
    elif operator == "%" and isinstance(left, str) and _FORMAT_WIDTH.search(left):
        raise _too_big("a %-format width or precision of six digits")


def _check_widths(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for argument in (*args, *kwargs.values()):
        if isinstance(argument, int) and argument > MAX_TEXT:
            raise _too_big(f"a width of {argument}")


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_ITEMS:
        raise _too_big(f"range of {len(numbers)} items")
    return numbers


class _CappedCodeGenerator(CodeGenerator):
    """Compiles `a ~ b` into a call the environment checks, instead of a bare join, and
    makes every `for` loop draw its items from the render's iteration budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        budgeted = nodes.EnvironmentAttribute("budgeted", lineno=node.lineno)
        node.iter = nodes.Call(budgeted, [node.iter], [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class _TemplateSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _CappedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(autoescape=False)
        self.globals["range"] = _safe_range
        for name, plain in (
            ("center", do_center),
            ("indent", do_indent),
            ("replace", do_replace),
            ("format", do_format),
            ("wordwrap", do_wordwrap),
        ):
            self.filters[name] = _checked_filter(plain)
        self.filters["join"] = _checked_join(self.filters["join"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        return _check_int(result)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_widths(args, kwargs)
            if _FIELD_WIDTH.search(fmt):
                raise _too_big("a format width or precision of six digits")
            return _check_text(wrapped(*args, **kwargs))

        return checked

    def budgeted(self, items: Iterable[Any]) -> Iterator[Any]:
        """`items`, each counted against the render's budget (nested loops multiply)."""
        budget = _BUDGET.get()
        for item in items:
            budget[0] -= 1
            if budget[0] < 0:
                raise _too_big(f"looping over {MAX_ITERATIONS} times in all")
            yield item

    def concat(self, parts: Iterable[Any]) -> str:
        texts = [str(part) for part in parts]
        if sum(len(text) for text in texts) > MAX_TEXT:
            raise _too_big("the concatenation")
        return "".join(texts)


def _checked_filter(plain: Any) -> Any:
    """A text filter whose arguments are checked before, and whose result after, it runs."""
    environment_first = getattr(plain, "jinja_pass_arg", None) is not None

    def checked(*args: Any, **kwargs: Any) -> Any:
        value = args[1] if environment_first else args[0]
        _check_widths(args, kwargs)
        if isinstance(value, str) and _FORMAT_WIDTH.search(value) and plain is do_format:
            raise _too_big("a %-format width or precision of six digits")
        if plain is do_replace and len(args) >= 3 + environment_first:
            old, new = args[1 + environment_first], args[2 + environment_first]
            grown = str(value).count(str(old)) * max(len(str(new)) - len(str(old)), 0)
            if len(str(value)) + grown > MAX_TEXT:
                raise _too_big("the replacement")
        result = plain(*args, **kwargs)
        return _check_text(result) if isinstance(result, str) else result

    checked.jinja_pass_arg = getattr(plain, "jinja_pass_arg", None)  # type: ignore[attr-defined]  # jinja reads it
    return checked


def _checked_join(plain: Any) -> Any:
    def checked(*args: Any, **kwargs: Any) -> Any:
        items = args[1] if len(args) > 1 else kwargs.get("value")  # after the eval context
        texts = [item for item in items or () if isinstance(item, str)] if _size(items) else []
        if sum(len(text) for text in texts) > MAX_TEXT:
            raise _too_big("the joined text")
        result = plain(*args, **kwargs)
        return _check_text(result) if isinstance(result, str) else result

    checked.jinja_pass_arg = getattr(plain, "jinja_pass_arg", None)  # type: ignore[attr-defined]  # jinja reads it
    return checked


_SANDBOX = _TemplateSandbox()
# Loop rounds left in the current render (a list, to count down in place).
_BUDGET: contextvars.ContextVar[list[int]] = contextvars.ContextVar("template_budget")


def render_template(source: str, context: Mapping[str, object]) -> str:
    """Render `source` with `context`; raises TemplateFailure for any error while doing so."""
    budget = _BUDGET.set([MAX_ITERATIONS])
    try:
        template = _SANDBOX.from_string(source)
        pieces: list[str] = []
        size = 0
        for piece in template.generate(**context):
            size += len(piece)
            if size > MAX_TEXT:
                raise _too_big("the output")
            pieces.append(piece)
        return "".join(pieces)
    except TemplateError as exc:
        raise TemplateFailure(str(exc.message or exc), _line_of(exc)) from None
    # Anything else the template's own code raised (a TypeError, a ZeroDivisionError, an
    # OverflowError, a ValueError of int("x"), ...) is the template's fault too.
    except Exception as exc:
        raise TemplateFailure(f"{type(exc).__name__}: {exc}", _line_of(exc)) from None
    finally:
        _BUDGET.reset(budget)


def _line_of(exc: BaseException) -> int | None:
    line = getattr(exc, "lineno", None)
    if isinstance(line, int):
        return line
    # jinja2 rewrites tracebacks so that template code shows as frames of "<template>".
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"]
    return frames[-1].lineno if frames else None
