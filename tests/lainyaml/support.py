"""Helpers shared by the spec tests: build small lain.yaml documents and read their problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lainyaml import LainConfig, LainYamlError, ProcSpec, parse_lain_yaml

DATA = Path(__file__).parent / "data"


def data_text(name: str) -> str:
    return (DATA / name).read_text()


def dump(sections: dict[str, Any], *, appname: str | None = "hello") -> str:
    document = {} if appname is None else {"appname": appname}
    document.update(sections)
    return yaml.safe_dump(document, sort_keys=False)


def parse(sections: dict[str, Any], **kwargs: Any) -> LainConfig:
    return parse_lain_yaml(dump(sections, **kwargs))


def one_proc(key: str, fields: dict[str, Any], **kwargs: Any) -> ProcSpec:
    """The single proc defined by section `key`."""
    config = parse({key: fields}, **kwargs)
    assert len(config.procs) == 1
    return config.procs[0]


def problems_of(text: str, **kwargs: Any) -> list[str]:
    with pytest.raises(LainYamlError) as info:
        parse_lain_yaml(text, **kwargs)
    return [str(p) for p in info.value.problems]


def problems(sections: dict[str, Any], **kwargs: Any) -> list[str]:
    return problems_of(dump(sections, **kwargs))
