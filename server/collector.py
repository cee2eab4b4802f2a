"""The garbage collector, set up for a server that holds thousands of open websockets.

Python's full collections traverse every tracked object. With 5,000 subscribers the heap
holds millions of them (each socket's protocol, handler, context, tasks), and the default
thresholds (700, 10, 10) ran a full collection every few rounds of fan-out: 20 of them,
0.4-0.8 s each, while a 5,000-subscriber bench ran (bench/RESULTS.md). Almost nothing they
found was garbage: what a request or an event allocates is freed by reference counting.

So the young generation is collected every 50,000 allocations instead of 700, and the older
ones rarely; cyclic garbage is still collected, later. (What start-up built is frozen by
the app's lifespan, `server/app.py`, so that no collection traverses it.)
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_collector"]

THRESHOLDS = (50_000, 50, 100)


def tune_collector() -> None:
    """Call once, in the process that serves (not in tests, which build many apps)."""
    gc.set_threshold(*THRESHOLDS)
