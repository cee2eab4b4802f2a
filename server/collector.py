"""The garbage collector, set up for a server that holds thousands of open websockets.

Python's full collections traverse every tracked object. With 5,000 subscribers the heap
holds millions of them (each socket's protocol, handler, context, tasks), and the default
thresholds (700, 10, 10) ran a full collection every few rounds of fan-out: 20 of them,
0.4-0.8 s each, while a 5,000-subscriber bench ran (bench/RESULTS.md). Almost nothing they
found was garbage: what a request or an event allocates is freed by reference counting.

So, once the app is built: collect, freeze what start-up built (the schema, the modules,
the settings are never garbage; frozen objects are skipped by every collection), and collect
the young generation every 50,000 allocations instead of 700, the older ones rarely. Cyclic
garbage is still collected, later.
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "settle_heap"]

THRESHOLDS = (50_000, 50, 100)


def settle_heap() -> None:
    """Call once, after start-up has built the app and before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
