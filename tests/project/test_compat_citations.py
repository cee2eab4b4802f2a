"""Every `COMPAT <section>` cited in the code and tests is a section of docs/lain-compat.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "lain-compat.md"
SEARCHED = [
    "lainyaml",
    "store",
    "backends",
    "resolvers",
    "schema",
    "rest_compat",
    "server",
    "tests",
]

# "COMPAT 3.11", "COMPAT.md 4.2 and 5.5", "COMPAT 3.10-3.12", "COMPAT 1.2, 1.3, 1.1", "COMPAT 6",
# a list that goes on after a line break in a docstring ("(COMPAT 3.7,\n3.15, 8.3)").
_NUMBER = r"\d+(?:\.\d+)?"
_CITATION = re.compile(rf"COMPAT(?:\.md)?\s+({_NUMBER}(?:(?:\s*,\s*|\s+and\s+|\s*-\s*){_NUMBER})*)")
# Section headings ("### 3.11 `/v1/apps/`", "## 9. Checklist") and checklist items ("- **9.13**").
_SECTION = re.compile(rf"^(?:#+ ({_NUMBER})\.?\s|- \*\*({_NUMBER})\*\*)", re.MULTILINE)


def _sections() -> set[str]:
    return {heading or item for heading, item in _SECTION.findall(DOC.read_text())}


def _citations() -> dict[str, list[str]]:
    """Each cited section, with the files that cite it."""
    cited: dict[str, list[str]] = {}
    for folder in SEARCHED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for found in _CITATION.finditer(path.read_text()):
                for number in re.findall(_NUMBER, found.group(1)):
                    cited.setdefault(number, []).append(str(path.relative_to(ROOT)))
    return cited


def test_the_document_has_its_sections() -> None:
    sections = _sections()
    assert {"1", "1.1", "3.15", "9", "9.27", "11"} <= sections


def test_every_citation_resolves_in_the_document() -> None:
    cited = _citations()
    assert len(cited) > 30  # the pattern still finds the code's citations
    sections = _sections()
    missing = {number: files for number, files in cited.items() if number not in sections}
    assert missing == {}
