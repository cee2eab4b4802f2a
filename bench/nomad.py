"""The fake Nomad of `tests/fakes`, in a process of its own: `python -m bench.nomad`.

It prints `{"url": ...}` when it listens. On the `report` command it prints how often each
job was registered (counted inside the fake, from the register requests' bodies) and the
jobs it holds; `quit` (or the end of stdin) stops it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer

__all__ = ["main"]

# The fake cluster places and starts allocations on this timer, as a real one would.
_SETTLE_SECONDS = 0.1


class CountingNomad(FakeNomad):
    """Counts register calls per job id: a duplicate deploy would show as a 2."""

    def __init__(self) -> None:
        super().__init__()
        self.registered: Counter[str] = Counter()

    def register(self, namespace: str, body: Any, *, path_id: str | None = None) -> dict[str, Any]:
        job = body.get("Job") if isinstance(body, dict) else None
        if isinstance(job, dict):
            with self.lock:
                self.registered[str(job.get("ID"))] += 1
        return super().register(namespace, body, path_id=path_id)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    fake = CountingNomad()
    server = FakeNomadServer(fake, auto_settle=_SETTLE_SECONDS).start()
    _say({"url": server.url})
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "report":
                with fake.lock:
                    jobs = sorted(job_id for _, job_id in fake.jobs)
                    registered = dict(fake.registered)
                _say({"registered": registered, "jobs": jobs, "requests": len(server.seen)})
            elif command == "quit":
                break
    finally:
        server.stop()


if __name__ == "__main__":
    main()
