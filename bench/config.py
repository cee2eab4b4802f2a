"""The product's settings for every benchmarked server, through `load_settings` (the
`LAIN_CONSOLE_*` variables), so they are read the way `lain-console serve` reads them."""

from __future__ import annotations

from pathlib import Path

from server.settings import Settings, load_settings

__all__ = ["BENCH_ENVIRON", "bench_settings"]

# Differences from the defaults, and why:
BENCH_ENVIRON = {
    # 1,200 requests a minute per caller would answer most of the load with 429.
    "LAIN_CONSOLE_RATE_LIMIT_PER_MINUTE": "0",
    # A reconciliation round (every 30 s) would land inside some measurements and not
    # others; it is off, so every measurement sees request handling only.
    "LAIN_CONSOLE_RECONCILE_INTERVAL": "0",
    # One access line per request, written to a terminal, would time the terminal.
    "LAIN_CONSOLE_LOG_LEVEL": "WARNING",
    "LAIN_CONSOLE_GRAPHIQL": "false",
}


def bench_settings(
    data_dir: Path,
    database_url: str,
    *,
    backend: str = "local",
    metrics: bool = True,
    read_cache: bool = False,
) -> Settings:
    """`read_cache`: on, repeated reads are answered from it (part `cached`); off by default,
    so that every other part times request handling itself (the "uncached" figures)."""
    return load_settings(
        {
            **BENCH_ENVIRON,
            "LAIN_CONSOLE_METRICS": "true" if metrics else "false",
            **({} if read_cache else {"LAIN_CONSOLE_READ_CACHE_BYTES": "0"}),
            "LAIN_CONSOLE_DATA_DIR": str(data_dir),
            "LAIN_CONSOLE_DATABASE_URL": database_url,
            "LAIN_CONSOLE_BACKEND": backend,
        }
    )
