"""Problems found in a lain.yaml, and the one exception that carries them.

    ValueError
      LainYamlError   every problem of one document, one per line

`Problem` is a value (where, what); `ProblemSink` collects them while a document is checked so
that one pass reports everything instead of stopping at the first mistake.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LainYamlError", "Problem", "ProblemSink"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document.

    `path` names the place: a top-level key (`appname`), a proc field (`procs.web.memory`), a
    section key (`web.a.b`), `yaml` for text that does not load, `<root>` for the document.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class LainYamlError(ValueError):
    """A lain.yaml (or a name in it) is not acceptable; `problems` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("LainYamlError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    def __repr__(self) -> str:
        return f"LainYamlError({list(self.problems)!r})"


class ProblemSink:
    """Collects problems while a document is checked; `raise_if_any` ends the check.

    At most `limit` problems are kept: a generated document can hold tens of thousands of
    mistakes, and a message that long helps nobody. The rest are counted in a last problem.
    """

    def __init__(self, *, limit: int = 200) -> None:
        self._problems: list[Problem] = []
        self._limit = limit
        self._dropped = 0

    def add(self, path: str, message: str) -> None:
        self.extend([Problem(path, message)])

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            if len(self._problems) < self._limit:
                self._problems.append(problem)
            else:
                self._dropped += 1

    def __len__(self) -> int:
        return len(self._problems) + self._dropped

    @property
    def problems(self) -> tuple[Problem, ...]:
        if not self._dropped:
            return tuple(self._problems)
        more = Problem("<root>", f"{self._dropped} more problems not shown")
        return (*self._problems, more)

    def raise_if_any(self) -> None:
        """Raises LainYamlError with everything collected so far, if anything was."""
        if len(self):
            raise LainYamlError(self.problems)
