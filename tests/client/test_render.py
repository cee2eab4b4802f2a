"""What the CLI prints when its output is piped (capsys's streams are not terminals)."""

from __future__ import annotations

import pytest

from client.render import Output, instances_table


def test_a_piped_table_keeps_each_row_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # set, it is the width (test_lifecycle)
    procs = [
        {
            "name": f"web{n}",
            "instances": [
                {
                    "number": 1,
                    "status": "RUNNING",
                    "healthy": True,
                    "release": "1528874349-6f8a0c1e2b3d4f5a6b7c8d9e0f1a2b3c4d5e6f70",
                    "restarts": 0,
                    "ip": "127.0.0.1",
                    "port": 57989,
                    "lastError": "a message long enough to push the row past eighty columns",
                }
            ],
        }
        for n in (1, 2)
    ]
    Output(as_json=False).show(procs, instances_table(procs))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines  # the header and one line per instance
    assert "127.0.0.1:57989" in lines[1]
    assert lines[2].rstrip().endswith("past eighty columns")
