"""`python -m bench` (or `make bench`): every benchmark, printed as tables.

    python -m bench                         # everything, N = 100 and 1000 (~6 minutes)
    python -m bench --quick                 # a smoke run of every part (~2 minutes)
    python -m bench --only rest,graphql --sizes 100
    python -m bench --output bench/last-run.txt

Parts: rest, graphql (throughput against the baseline), cached (the same reads repeated,
read cache on), objects (one app, one proc, beside the original console's figures), sql
(statements per request), fanout (subscriptions), deploy (concurrent deploys against the
fake Nomad), scale (the scale PATCH on the local backend, beside the original console's
figures), instances (idle CPU with ~350 real instances, and reads with them beside the
in-memory scheduler).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench import (
    cached,
    deploy,
    eventsql,
    fanout,
    instances,
    objects,
    scale,
    sqlcount,
    throughput,
)
from bench.load import Budget
from bench.report import Table, verdict

PARTS = (
    "rest",
    "graphql",
    "cached",
    "objects",
    "sql",
    "fanout",
    "deploy",
    "scale",
    "instances",
)


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: list[int]
    parts: list[str]
    budget: Budget
    subscribers: int
    large_subscribers: list[int]
    client_processes: int
    rounds: int
    propagation_events: int
    deploy_apps: int
    instance_apps: int  # apps of 5 real instances each (bench.instances)
    idle_window: float
    workdir: Path


def _plan(argv: list[str] | None) -> tuple[Plan, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", help="app counts N, comma-separated (default 100,1000)")
    parser.add_argument("--only", help=f"parts to run, comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="small budgets: a smoke run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, help="time bound of each load measurement")
    parser.add_argument("--subscribers", type=int, help="websocket subscribers (default 1000)")
    parser.add_argument(
        "--large-subscribers",
        help="subscriber counts for the fan-out at N = 1000 (default 1000,5000; 0: skip)",
    )
    parser.add_argument("--deploy-apps", type=int, help="apps deployed at once (default 100)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "lain-console-bench",
        help="seeded databases are kept here between runs",
    )
    parser.add_argument("--output", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    parts = args.only.split(",") if args.only else list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    quick = args.quick
    sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else ([100] if quick else [100, 1000])
    )
    budget = Budget(
        concurrency=args.concurrency,
        warmup=args.concurrency,
        max_requests=200 if quick else 2000,
        max_seconds=args.seconds or (2.0 if quick else 10.0),
        min_requests=5 if quick else 20,
    )
    plan = Plan(
        sizes=sizes,
        parts=parts,
        budget=budget,
        subscribers=args.subscribers or (100 if quick else 1000),
        large_subscribers=[
            int(count)
            for count in (args.large_subscribers or ("200" if quick else "1000,5000")).split(",")
            if int(count) > 0
        ],
        client_processes=2,
        rounds=2 if quick else 5,
        propagation_events=20 if quick else 100,
        deploy_apps=args.deploy_apps or (20 if quick else 100),
        instance_apps=20 if quick else 70,
        idle_window=10.0 if quick else 20.0,
        workdir=args.workdir,
    )
    return plan, args.output


def _environment() -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version} (file, WAL), uvicorn 1 worker (uvloop, httptools); "
        f"{time.strftime('%Y-%m-%d %H:%M')}; {_revision()}; {_load()}"
    )


def _revision() -> str:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "revision unknown"
    return f"commit {head}{' with local changes' if dirty else ''}"


def _load() -> str:
    # Every figure assumes the machine's cores are ours: say so when something else runs
    # as the run starts (later on, the run's own processes are in the load average).
    one_minute = os.getloadavg()[0]
    note = " (busy: other work shares the CPUs)" if one_minute > 0.5 else ""
    return f"load average {one_minute:.2f}{note}"


def _summary(
    measured: list[throughput.Measured],
    repeated: list[throughput.Measured],
    single: list[objects.ObjectMeasured],
    counted: list[sqlcount.Counted],
    fanned: fanout.FanoutResult | None,
    deployed: deploy.DeployResult | None,
    scaled: scale.ScaleResult | None = None,
    real: instances.InstancesResult | None = None,
) -> Table:
    found = Table("Targets", ["target", "measured", "verdict"])
    for m in measured:
        target = throughput.TARGETS[m.endpoint]
        name = f"{throughput.ENDPOINTS[m.endpoint]}, N={m.n}: >= {target} of baseline req/s"
        found.add(name, m.ratio, verdict(m.ratio >= target))
    for m in repeated:
        name = (
            f"{throughput.ENDPOINTS[m.endpoint]} repeated, read cache on, N={m.n}: "
            f">= {cached.TARGET} of baseline req/s"
        )
        found.add(name, m.ratio, verdict(m.ratio >= cached.TARGET))
    for o in single:
        wanted = objects.OBJECTS[o.kind]
        found.add(
            f"{wanted.title}, N={o.n}: >= {wanted.target:.0f} req/s (1.5x the original's)",
            f"{o.result.rate:.0f} req/s",
            verdict(o.met),
        )
    for endpoint in dict.fromkeys(c.endpoint for c in counted):
        per_n = {c.n: set(c.product) for c in counted if c.endpoint == endpoint}
        shown = ", ".join(f"N={n}: {'/'.join(map(str, sorted(v)))}" for n, v in per_n.items())
        constant = len(set().union(*per_n.values())) == 1
        found.add(
            f"{throughput.ENDPOINTS[endpoint]}: SQL statements constant in N",
            shown,
            verdict(constant),
        )
    if fanned is not None:
        many, _, one = fanned.series
        found.add(
            f"fan-out to {many.subscribers} subscribers: p99 <= {fanout.FANOUT_TARGET_MS:.0f} ms",
            f"p99 {many.summary()[0].p99:.0f} ms",
            verdict(many.missed == 0 and many.summary()[0].p99 <= fanout.FANOUT_TARGET_MS),
        )
        found.add(
            f"backend event -> subscriber: p99 <= {fanout.PROPAGATION_TARGET_MS:.0f} ms",
            f"p99 {one.summary()[0].p99:.1f} ms",
            verdict(one.missed == 0 and one.summary()[0].p99 <= fanout.PROPAGATION_TARGET_MS),
        )
        for series, _, peak in fanned.large:
            each = series.summary()[0]
            large = series.subscribers > 1000
            target = fanout.LARGE_FANOUT_TARGET_MS if large else fanout.FANOUT_TARGET_MS
            found.add(
                f"N=1000: fan-out to {series.subscribers} subscribers: p99 <= {target:.0f} ms",
                f"p99 {each.p99:.0f} ms",
                verdict(series.missed == 0 and each.p99 <= target),
            )
            if series.subscribers == 1000:
                found.add(
                    f"N=1000, 1000 subscribers: console RSS <= {fanout.RSS_TARGET_MB:.0f} MB",
                    f"peak {peak:.0f} MB",
                    verdict(peak <= fanout.RSS_TARGET_MB),
                )
    if deployed is not None:
        found.add(
            f"{deployed.apps} concurrent deploys: none lost or duplicated",
            f"{deployed.rate:.1f} mutations/s",
            verdict(deployed.exact),
        )
    if scaled is not None:
        found.add(
            f"scale PATCH, {scaled.apps} clients on {scaled.apps} apps: "
            f">= {scale.TARGET_RATE:.0f} req/s, p99 <= {scale.TARGET_P99_MS:.0f} ms "
            f"(original {scale.ORIGINAL_RATE[0]:.0f}-{scale.ORIGINAL_RATE[1]:.0f} req/s)",
            f"{scaled.rate:.0f} req/s, p99 {scaled.latencies.p99:.0f} ms, "
            f"{scaled.cpu_ms:.1f} ms CPU each",
            verdict(scaled.met),
        )
    if real is not None:
        found.add(
            f"idle console CPU, {real.instances} real instances: <= {instances.IDLE_TARGET:.0%}",
            f"{real.idle_cpu:.2%}",
            verdict(real.met),
        )
    return found


def main(argv: list[str] | None = None) -> int:
    plan, output = _plan(argv)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    printed: list[str] = []

    def show(table: Table) -> None:
        text = table.render()
        printed.append(text)
        print("\n" + text + "\n", flush=True)

    header = _environment()
    print(header, flush=True)
    measured: list[throughput.Measured] = []
    repeated: list[throughput.Measured] = []
    single: list[objects.ObjectMeasured] = []
    counted: list[sqlcount.Counted] = []
    fanned: fanout.FanoutResult | None = None
    deployed: deploy.DeployResult | None = None
    scaled: scale.ScaleResult | None = None
    real: instances.InstancesResult | None = None
    steps: list[tuple[str, Callable[[], None]]] = []

    endpoints: list[str] = [p for p in ("rest", "graphql") if p in plan.parts]
    if endpoints:

        def run_throughput() -> None:
            measured.extend(throughput.measure(plan.workdir, plan.sizes, endpoints, plan.budget))
            for table in throughput.tables(measured, plan.budget):
                show(table)

        steps.append(("throughput", run_throughput))
    if "cached" in plan.parts:

        def run_cached() -> None:
            found, misses = cached.measure(
                plan.workdir, plan.sizes, ["rest", "graphql"], plan.budget
            )
            repeated.extend(found)
            show(cached.table(repeated))
            show(cached.cost_table(misses))

        steps.append(("cached", run_cached))
    if "objects" in plan.parts:

        def run_objects() -> None:
            for n in plan.sizes:
                single.extend(objects.measure(plan.workdir, n, plan.budget))
            show(objects.table(single, plan.budget))

        steps.append(("objects", run_objects))
    if "sql" in plan.parts:

        def run_sql() -> None:
            counted.extend(sqlcount.count(plan.workdir, plan.sizes, ["rest", "graphql"]))
            show(sqlcount.table(counted))
            show(eventsql.table(eventsql.count_per_event(plan.workdir)))

        steps.append(("sql", run_sql))
    if "fanout" in plan.parts:

        def run_fanout() -> None:
            nonlocal fanned
            fanned = fanout.measure(
                plan.workdir,
                subscribers=plan.subscribers,
                processes=plan.client_processes,
                rounds=plan.rounds,
                propagation_events=plan.propagation_events,
                large_subscribers=plan.large_subscribers,
            )
            show(fanout.table(fanned))
            if fanned.large:
                show(fanout.large_table(fanned))

        steps.append(("fanout", run_fanout))
    if "deploy" in plan.parts:

        def run_deploy() -> None:
            nonlocal deployed
            deployed = deploy.measure(plan.workdir, plan.deploy_apps)
            show(deploy.table(deployed))

        steps.append(("deploy", run_deploy))
    if "scale" in plan.parts:

        def run_scale() -> None:
            nonlocal scaled
            scaled = scale.measure(plan.workdir, replace(plan.budget, max_requests=10 * 2000))
            show(scale.table(scaled))

        steps.append(("scale", run_scale))
    if "instances" in plan.parts:

        def run_instances() -> None:
            nonlocal real
            real = instances.measure(
                plan.workdir,
                replace(plan.budget, max_seconds=min(plan.budget.max_seconds, 5.0)),
                apps=plan.instance_apps,
                window=plan.idle_window,
            )
            for table in instances.tables(real):
                show(table)

        steps.append(("instances", run_instances))

    started = time.monotonic()
    for name, step in steps:
        print(f"[{name}]", flush=True)
        step()
    show(_summary(measured, repeated, single, counted, fanned, deployed, scaled, real))
    footer = f"(all parts in {time.monotonic() - started:.0f} s)"
    printed.append(footer)
    print(footer)
    if output is not None:
        output.write_text(header + "\n\n" + "\n\n".join(printed) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
