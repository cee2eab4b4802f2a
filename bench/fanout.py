"""Part 3: subscription fan-out and event propagation over real websockets.

The product runs in its own process (`bench.serve app --control`) over the N=100 dataset.
Subscribers are `bench.wsclients` processes, the 1,000 of them split over two processes
so that one Python client process does not have to parse every frame. Three measurements:

- fan-out, mutation: 1,000 subscribers of `procEvents`; a `scaleProc` mutation over HTTP
  changes the proc; per subscriber, the time from sending the mutation to receiving the
  event.
- fan-out, backend event: the same subscribers; the scheduler publishes an instance restart
  (`/_bench/restart`); per subscriber, the time from the scheduler's publish to receipt.
- propagation: one subscriber, the same backend events one at a time.

Rounds run one after the other: the next starts when every subscriber has the previous
event. The first rounds are a warm-up that also proves every subscription is live.
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.processes import Served, python_module, server
from bench.report import Latencies, Table, verdict
from bench.seed import app_name, dataset

__all__ = ["FanoutResult", "measure", "table"]

SUBSCRIPTION = (
    "subscription Watch($app: String!, $proc: String!) { procEvents(app: $app, proc: $proc) "
    "{ cursor kind proc { name numInstances instances { number status } } "
    "instance { number status restarts } } }"
)
SCALE = (
    "mutation Scale($input: ScaleProcInput!) { scaleProc(input: $input) "
    "{ proc { numInstances } errors { code message } } }"
)
_APP, _PROC = app_name(0), "web"
_JOB = f"{_APP}.web.{_PROC}"
_ROUND_TIMEOUT = 30.0
_WARMUP_ROUNDS = 2
_GAP = 0.05  # seconds between rounds, so one round's stragglers never overlap the next
FANOUT_TARGET_MS = 100.0  # issue 18: one change -> 1,000 subscribers
PROPAGATION_TARGET_MS = 50.0
LARGE_FANOUT_TARGET_MS = 600.0  # issue 18: one change -> 5,000 subscribers, one process
RSS_TARGET_MB = 400.0  # issue 18: N = 1000 apps and 1,000 subscribers


@dataclass
class Series:
    """One kind of round: per-subscriber latencies and, per round, the slowest."""

    name: str
    subscribers: int
    latencies: list[float] = field(default_factory=list)
    slowest: list[float] = field(default_factory=list)
    rounds: int = 0
    missed: int = 0  # subscriber-rounds that never got the event

    def summary(self) -> tuple[Latencies, Latencies]:
        return Latencies(tuple(self.latencies)), Latencies(tuple(self.slowest))


@dataclass
class FanoutResult:
    series: list[Series]
    client_processes: int
    compression: bool
    # At N = 1000 apps: the scale series per subscriber count, and the console's memory.
    large: list[tuple[Series, float, float]] = field(default_factory=list)  # (series, RSS, peak)
    idle_rss_mb: float = 0.0


class _Clients:
    """Subscriber processes, each read by a thread that queues its JSON lines."""

    def __init__(
        self,
        children: list[subprocess.Popen[str]],
        lines: list[queue.Queue[dict[str, Any]]] | None = None,
    ) -> None:
        self.children = children
        if lines is not None:  # already read (`joined`)
            self.lines = lines
            return
        self.lines = []
        for child in children:
            queued: queue.Queue[dict[str, Any]] = queue.Queue()
            threading.Thread(target=_pump, args=(child, queued), daemon=True).start()
            self.lines.append(queued)

    @classmethod
    def joined(cls, groups: list[_Clients]) -> _Clients:
        """Several groups of subscriber processes as one."""
        return cls(
            [child for group in groups for child in group.children],
            [lines for group in groups for lines in group.lines],
        )

    def expect(self, key: str, timeout: float) -> list[dict[str, Any] | None]:
        """The next message with `key` from every process (None where none came in time)."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any] | None] = []
        for lines in self.lines:
            message = None
            while message is None or key not in message:
                left = deadline - time.monotonic()
                if left <= 0:
                    message = None
                    break
                try:
                    message = lines.get(timeout=left)
                except queue.Empty:
                    message = None
                    break
            found.append(message)
        return found

    def drain(self) -> None:
        for lines in self.lines:
            while not lines.empty():
                lines.get_nowait()

    def dump(self) -> tuple[dict[str, list[int]], list[str]]:
        """Every arrival, by cursor, and the first errors the subscribers saw."""
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write("dump\n")
            child.stdin.flush()
        arrivals: dict[str, list[int]] = {}
        errors: list[str] = []
        for message in self.expect("arrivals", 60.0):
            if message is None:
                errors.append("a subscriber process did not report its arrivals")
                continue
            for cursor, stamps in message["arrivals"].items():
                arrivals.setdefault(cursor, []).extend(stamps)
            errors.extend(message["errors"])
        return arrivals, errors


def _pump(child: subprocess.Popen[str], lines: queue.Queue[dict[str, Any]]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        lines.put(json.loads(line))


@contextlib.contextmanager
def _subscribers(url: str, count: int, processes: int, *, compression: bool) -> Iterator[_Clients]:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    with contextlib.ExitStack() as stack:
        children = [
            stack.enter_context(
                python_module(
                    "bench.wsclients",
                    [
                        "--url",
                        ws_url,
                        "--count",
                        str(share),
                        "--query",
                        SUBSCRIPTION,
                        "--variables",
                        json.dumps({"app": _APP, "proc": _PROC}),
                        "--field",
                        "procEvents",
                        *([] if compression else ["--no-compression"]),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
            for share in shares
            if share
        ]
        clients = _Clients(children)
        ready = clients.expect("ready", 120.0)
        if any(message is None for message in ready):
            raise RuntimeError(f"subscribers did not connect: {ready}")
        yield clients


def _wait_idle(served: Served, *, below: float = 0.1, within: float = 30.0) -> None:
    """Until the server uses less than `below` of a core over a quarter second (it settles
    after connections open or close), or `within` seconds have passed."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = served.cpu_seconds()
        time.sleep(0.25)
        if (served.cpu_seconds() - before) / 0.25 < below:
            return


def _restart(http: httpx.Client) -> int:
    response = http.post("/_bench/restart", params={"job": _JOB, "instance": "1"})
    response.raise_for_status()
    published: int = response.json()["published_ns"]
    return published


def _scale(http: httpx.Client, count: int) -> int:
    started = time.monotonic_ns()
    variables = {"input": {"app": _APP, "proc": _PROC, "numInstances": count}}
    response = http.post("/graphql", json={"query": SCALE, "variables": variables})
    response.raise_for_status()
    body = response.json()
    if body.get("errors") or body["data"]["scaleProc"]["errors"]:
        raise RuntimeError(f"scaleProc failed: {body}")
    return started


def _round(clients: _Clients, trigger: Callable[[], int]) -> tuple[int, str | None]:
    """Trigger one change; its start and the cursor every process reported complete."""
    clients.drain()
    started = trigger()
    reports = clients.expect("complete", _ROUND_TIMEOUT)
    cursors = {report["complete"] if report is not None else None for report in reports}
    time.sleep(_GAP)
    if None in cursors or len(cursors) != 1:
        return started, None
    return started, cursors.pop()


def _series(
    name: str, subscribers: int, clients: _Clients, triggers: list[Callable[[], int]]
) -> tuple[Series, list[tuple[int, str | None]]]:
    series = Series(name, subscribers)
    done = [_round(clients, trigger) for trigger in triggers]
    series.rounds = len(done)
    return series, done


def _fill(
    series: Series, done: list[tuple[int, str | None]], arrivals: dict[str, list[int]]
) -> None:
    for started, cursor in done:
        stamps = arrivals.get(cursor, []) if cursor is not None else []
        series.missed += series.subscribers - len(stamps)
        if not stamps:
            continue
        latencies = [(stamp - started) / 1e6 for stamp in stamps]
        series.latencies.extend(latencies)
        series.slowest.append(max(latencies))


def measure(
    workdir: Path,
    *,
    subscribers: int,
    processes: int,
    rounds: int,
    propagation_events: int,
    compression: bool = True,
    large_subscribers: list[int] | None = None,
) -> FanoutResult:
    data = dataset(workdir, 100)
    result = FanoutResult(series=[], client_processes=processes, compression=compression)
    with (
        server("app", data_dir=data.directory, n=data.n, control=True) as served,
        httpx.Client(base_url=served.url, timeout=60.0) as http,
    ):
        url = served.url
        # Propagation first, on a server that has never held the 1,000 sockets: closing them
        # keeps it busy for seconds afterwards, which is teardown, not propagation.
        print(f"  propagation: 1 subscriber, {propagation_events} events ...", flush=True)
        _wait_idle(served)
        with _subscribers(url, 1, 1, compression=compression) as single:
            for _ in range(_WARMUP_ROUNDS):
                _round(single, lambda: _restart(http))
            alone, alone_done = _series(
                "backend event published -> subscriber",
                1,
                single,
                [lambda: _restart(http) for _ in range(propagation_events)],
            )
            alone_arrivals, alone_errors = single.dump()
        _fill(alone, alone_done, alone_arrivals)
        print(f"  fan-out: {subscribers} subscribers over {processes} processes ...", flush=True)
        _wait_idle(served)
        with _subscribers(url, subscribers, processes, compression=compression) as clients:
            print(f"  {subscribers} subscribed; {rounds} + {rounds} rounds ...", flush=True)
            _wait_idle(served)
            for _ in range(_WARMUP_ROUNDS):
                _round(clients, lambda: _restart(http))
            scale, scale_done = _series(
                "scaleProc mutation sent -> subscriber",
                subscribers,
                clients,
                # Up and down again, so every round is a real change of the proc.
                [functools.partial(_scale, http, 4 if k % 2 == 0 else 3) for k in range(rounds)],
            )
            backend, backend_done = _series(
                "backend event published -> subscriber",
                subscribers,
                clients,
                [lambda: _restart(http) for _ in range(rounds)],
            )
            arrivals, errors = clients.dump()
        _fill(scale, scale_done, arrivals)
        _fill(backend, backend_done, arrivals)
    if errors or alone_errors:
        print(f"  subscriber errors: {(errors + alone_errors)[:3]}")
    result.series = [scale, backend, alone]
    if large_subscribers:
        _measure_large(workdir, result, large_subscribers, rounds, compression)
    return result


def _rss_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak, in MB (Linux /proc)."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def _measure_large(
    workdir: Path, result: FanoutResult, counts: list[int], rounds: int, compression: bool
) -> None:
    """N = 1000 apps: subscribers added up to each count, scale rounds at each, and memory."""
    data = dataset(workdir, 1000)
    with (
        server("app", data_dir=data.directory, n=data.n, control=True) as served,
        httpx.Client(base_url=served.url, timeout=60.0) as http,
        contextlib.ExitStack() as stack,
    ):
        _wait_idle(served)
        result.idle_rss_mb = _rss_mb(served.pid)[0]
        groups: list[_Clients] = []
        phases: list[tuple[Series, list[tuple[int, str | None]], float, float]] = []
        connected = 0
        for count in sorted(counts):
            added = count - connected
            # About 1,000 subscribers per client process, so none falls far behind parsing.
            processes = max(1, round(added / 1000))
            print(f"  N=1000: {count} subscribers ({added} more in {processes} processes) ...")
            groups.append(
                stack.enter_context(
                    _subscribers(served.url, added, processes, compression=compression)
                )
            )
            connected = count
            clients = _Clients.joined(groups)
            _wait_idle(served)
            for _ in range(_WARMUP_ROUNDS):
                _round(clients, lambda: _restart(http))
            series, done = _series(
                "scaleProc mutation sent -> subscriber",
                count,
                clients,
                [functools.partial(_scale, http, 4 if k % 2 == 0 else 3) for k in range(rounds)],
            )
            phases.append((series, done, *_rss_mb(served.pid)))
        # Once, at the end: a subscriber process reports its arrivals and exits.
        arrivals, errors = _Clients.joined(groups).dump()
        if errors:
            print(f"  subscriber errors: {errors[:3]}")
        for series, done, rss, peak in phases:
            _fill(series, done, arrivals)
            result.large.append((series, rss, peak))


def large_table(result: FanoutResult) -> Table:
    found = Table(
        "3b. Fan-out at N = 1000 apps, one console process (scaleProc -> procEvents "
        "subscribers), and the console's memory",
        [
            "subscribers",
            "rounds",
            "missed",
            "p50 ms",
            "p99 ms",
            "max ms",
            "all-have-it p50 ms",
            "RSS MB",
            "peak RSS MB",
            "targets",
            "verdict",
        ],
    )
    for series, rss, peak in result.large:
        each, slowest = series.summary()
        target = LARGE_FANOUT_TARGET_MS if series.subscribers > 1000 else FANOUT_TARGET_MS
        targets = f"p99 <= {target:.0f}"
        met = series.missed == 0 and each.p99 <= target
        if series.subscribers == 1000:
            targets += f", RSS <= {RSS_TARGET_MB:.0f} MB"
            met = met and peak <= RSS_TARGET_MB
        found.add(
            series.subscribers,
            series.rounds,
            series.missed,
            each.p50,
            each.p99,
            each.max,
            slowest.p50,
            round(rss),
            round(peak),
            targets,
            verdict(met),
        )
    found.note(
        f"RSS of the console with N = 1000 apps and no subscriber: {result.idle_rss_mb:.0f} MB. "
        "Subscribers are added to those already connected; about 1,000 per client process."
    )
    return found


def table(result: FanoutResult) -> Table:
    found = Table(
        "3. Subscription fan-out and propagation (graphql-transport-ws, procEvents)",
        [
            "measurement",
            "subscribers",
            "rounds",
            "missed",
            "p50 ms",
            "p99 ms",
            "max ms",
            "all-have-it p50 ms",
            "target",
            "verdict",
        ],
    )
    for index, series in enumerate(result.series):
        each, slowest = series.summary()
        target = PROPAGATION_TARGET_MS if series.subscribers == 1 else FANOUT_TARGET_MS
        met = series.missed == 0 and each.p99 <= target
        found.add(
            series.name,
            series.subscribers,
            series.rounds,
            series.missed,
            each.p50,
            each.p99,
            each.max,
            slowest.p50,
            f"p99 <= {target:.0f}",
            verdict(met) if index != 1 else f"({verdict(met)})",
        )
    found.note(
        f"Subscribers in {result.client_processes} client processes (websockets library, "
        f"permessage-deflate {'on, as browsers' if result.compression else 'off'}); server "
        "in its own process; arrival stamped before parsing."
    )
    found.note("The backend-event fan-out row has no target of its own (shown for comparison).")
    return found
