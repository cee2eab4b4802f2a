"""`python -m bench.logs`: following instance output on the local backend.

1. One instance writes 10,000 lines/s, each stamped with its write time; one follower
   measures how long after the write it sees each line (p50/p99) and the console's CPU
   (this process: the pump, the journal, the fan-out and the follower).
2. The same writer with 100 followers on the proc: every follower gets every line, and
   the pump reads each byte of the file once (bytes read / bytes written ≈ 1, not 100).
3. The same through the REST door: `lain-console serve` in a process of its own, the
   writer deployed as an app, followers on `GET …/logs/?follow=1` (one parses and times
   every line, the others count bytes); the server process's CPU is printed.

    python -m bench.logs [--seconds 10] [--rate 10000] [--followers 100] [--no-rest]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backends.local import LocalScheduler
from backends.logs import LogLine, LogsDropped
from backends.types import ProcJob
from bench import logs_rest as rest_door
from bench.report import Table, percentile, verdict

WRITER = """
import sys, time
rate, batch = int(sys.argv[1]), 100
seq, start = 0, time.monotonic()
while True:
    due = start + seq / rate
    pause = due - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    sys.stdout.write("".join(f"{time.time_ns()} {seq + i} {'x' * 60}\\n" for i in range(batch)))
    sys.stdout.flush()
    seq += batch
"""


def _job(rate: int) -> ProcJob:
    return ProcJob(
        app="bench",
        proc="writer",
        proc_type="worker",
        meta_version="1528874349-6f8a0c1e2b3d4f5a6b7c8d9e0f1a2b3c4d5e6f70",
        image="bench",
        num_instances=1,
        cpu=0,
        memory_bytes=0,
        cmd=(sys.executable, "-c", WRITER, str(rate)),
        kill_timeout=2,
    )


@dataclass
class _Follower:
    lines: int = 0
    dropped: int = 0
    latencies_ms: list[float] | None = None

    async def follow(self, sched: LocalScheduler, job_id: str, stop: asyncio.Event) -> None:
        batches = sched.log_follow(job_id, tail=0)
        try:
            while not stop.is_set():
                batch = await anext(batches)
                now = time.time_ns()
                for item in batch:
                    if isinstance(item, LogsDropped):
                        self.dropped += item.count
                        continue
                    assert isinstance(item, LogLine)
                    self.lines += 1
                    if self.latencies_ms is not None:
                        written = int(item.text.split(" ", 1)[0])
                        self.latencies_ms.append((now - written) / 1e6)
        finally:
            await batches.aclose()  # type: ignore[attr-defined]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(seconds: float, rate: int, followers: int) -> tuple[dict[str, float], int, int]:
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as data:
        async with LocalScheduler(data_dir=Path(data), stop_on_exit=True) as sched:
            job = _job(rate)
            stop = asyncio.Event()
            watched = _Follower(latencies_ms=[])
            others = [_Follower() for _ in range(followers - 1)]
            tasks = [asyncio.create_task(f.follow(sched, job.job_id, stop)) for f in others]
            tasks.append(asyncio.create_task(watched.follow(sched, job.job_id, stop)))
            await sched.apply(job)
            # The raw file's size keeps growing: the pump frees what it read with a hole.
            raw = Path(data) / "local" / "logs" / job.job_id / "1.stdout.log"
            await asyncio.sleep(1.0)  # warm up: the process starts, the first reads settle
            read_before, cpu_before, wall_before = sched.log_bytes_read, _cpu(), time.monotonic()
            lines_before, written_before = watched.lines, raw.stat().st_size
            await asyncio.sleep(seconds)
            wall = time.monotonic() - wall_before
            cpu = _cpu() - cpu_before
            read = sched.log_bytes_read - read_before
            written = raw.stat().st_size - written_before
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await sched.remove(job.job_id)
    latencies = watched.latencies_ms or []
    figures = {
        "lines/s seen": (watched.lines - lines_before) / wall,
        "p50 ms": percentile(latencies, 50),
        "p99 ms": percentile(latencies, 99),
        "cpu %": 100 * cpu / wall,
        "dropped": float(sum(f.dropped for f in [watched, *others])),
        "min lines per follower": float(min(f.lines for f in [watched, *others])),
    }
    return figures, read, written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--no-rest", action="store_true", help="skip the REST door")
    args = parser.parse_args(argv)
    table = Table(
        f"Following one instance writing {args.rate} lines/s for {args.seconds:g} s",
        [
            "followers",
            "lines/s seen",
            "p50 ms",
            "p99 ms",
            "console cpu %",
            "dropped",
            "read/written",
            "p99 ≤ 200 ms",
        ],
    )
    for count in (1, args.followers):
        figures, read, written = asyncio.run(_run(args.seconds, args.rate, count))
        table.add(
            count,
            f"{figures['lines/s seen']:.0f}",
            f"{figures['p50 ms']:.1f}",
            f"{figures['p99 ms']:.1f}",
            f"{figures['cpu %']:.0f}",
            f"{figures['dropped']:.0f}",
            f"{read / written:.2f}" if written else "-",
            verdict(figures["p99 ms"] <= 200),
        )
    table.note("read/written: bytes the pump read from the output file per byte written.")
    print(table.render())
    if args.no_rest:
        return
    rest = Table(
        f"Through REST (?follow=1): one instance writing {args.rate} lines/s, {args.seconds:g} s",
        ["followers", "lines/s seen", "p50 ms", "p99 ms", "server cpu %", "p99 ≤ 200 ms"],
    )
    for count in (1, args.followers):
        figures = asyncio.run(rest_door.run(args.seconds, args.rate, count, WRITER))
        rest.add(
            count,
            f"{figures['lines/s seen']:.0f}",
            f"{figures['p50 ms']:.1f}",
            f"{figures['p99 ms']:.1f}",
            f"{figures['cpu %']:.0f}",
            verdict(figures["p99 ms"] <= 200),
        )
    rest.note("server cpu %: the lain-console process only (the writer runs on its own).")
    print(rest.render())


if __name__ == "__main__":
    main()
