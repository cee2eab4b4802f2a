"""The reconciler: brings the scheduler back to the desired state in the database.

It runs at start and then periodically. For every app that should run it compares each
desired job with what the scheduler reports, re-applies what is missing or drifted (another
spec, another count), finishes deploys that a stopped console left half-done, and writes
what it did to the audit log. Apps busy with an operation are left for the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backends.errors import SchedulerError
from backends.types import ProcJob, ProcState, RolloutStatus
from lainyaml import AppType
from resolvers.core import audit, bindings
from resolvers.core.context import OpContext
from resolvers.core.errors import Conflict
from resolvers.core.guard import RECONCILIATION
from resolvers.core.jobs import BoundPortal, build_job, build_portal_job
from resolvers.core.removals import retry_removals
from resolvers.readmodel.from_rows import app_view, default_image, proc_view, release_config
from store import queries
from store.models import App, AppStatus, Proc

__all__ = ["ReconcileReport", "reconcile", "reconcile_forever"]

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    applied: list[str] = field(default_factory=list)  # job ids created or re-specified
    removed: list[str] = field(default_factory=list)  # jobs no longer desired, removed now
    scaled: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # apps whose interrupted deploy ended
    failed: dict[str, str] = field(default_factory=dict)  # job id -> error
    skipped: list[str] = field(default_factory=list)  # apps busy with an operation
    # job id -> why its release is not applied again: the scheduler rolled it back.
    held: dict[str, str] = field(default_factory=dict)


async def _desired_jobs(ctx: OpContext, session: AsyncSession, app: App) -> list[ProcJob]:
    release = await queries.release(session, app.id, app.meta_version or "")
    if release is None:
        return []
    jobs: list[ProcJob] = []
    domain = ctx.services.domains[0]
    for proc in await queries.procs_of(session, app.id):
        if not proc.deployed or proc.proc_type == "portal":
            continue
        proc_release = release
        if proc.meta_version != release.meta_version:
            proc_release = await queries.release(session, app.id, proc.meta_version) or release
        view = proc_view(
            app.name,
            proc,
            proc_release,
            registry=ctx.services.registry,
            domains=ctx.services.domains,
        )
        if view is not None:
            jobs.append(build_job(view, domain=domain, timezone=ctx.services.timezone))
    config = release_config(release, ctx.services.domains)
    if config is None:
        return jobs
    image = release.image or default_image(ctx.services.registry, app.name, release.meta_version)
    for binding, client in await bindings.bindings_of_service(session, app):
        portal = config.portal_for_service(binding.service_name)
        if binding.deployed and portal is not None:
            use = BoundPortal(app.name, binding.service_name, portal, release.meta_version, image)
            jobs.append(
                build_portal_job(use, client=client, domain=domain, timezone=ctx.services.timezone)
            )
    return jobs


def _rolled_back(job: ProcJob, state: ProcState, failed_hash: str) -> bool:
    """Whether the scheduler runs another spec because it rolled this one back (now, or as
    recorded in an earlier round): applying it again would only fail and revert again,
    forever, so it waits for the user's next deploy."""
    desired = job.spec_hash()
    return (
        state.exists
        and state.spec_hash != desired
        and desired in (failed_hash, state.reverted_spec_hash)
    )


def _held_because(job: ProcJob, state: ProcState) -> str:
    return (
        f"release {job.meta_version} was rolled back by the scheduler "
        f"({state.last_error or 'its rollout failed'}); the previous release keeps "
        "running; deploy again to retry"
    )


async def _converge(
    ctx: OpContext,
    jobs: list[ProcJob],
    states: dict[str, ProcState],
    report: ReconcileReport,
    failed_hashes: dict[str, str],
) -> list[str]:
    done: list[str] = []
    for job in jobs:
        state = states.get(job.job_id, ProcState.missing(job.job_id))
        if state.rollout is RolloutStatus.RUNNING:
            continue  # on its way to the desired state: overtaking it would fight it
        if _rolled_back(job, state, failed_hashes.get(job.job_id, "")):
            report.held[job.job_id] = _held_because(job, state)
            continue
        try:
            if not state.exists or state.spec_hash != job.spec_hash():
                await ctx.scheduler.apply(job)
                report.applied.append(job.job_id)
                done.append(f"applied {job.job_id}")
            elif state.num_instances != job.num_instances:
                await ctx.scheduler.scale(job.job_id, job.num_instances)
                report.scaled.append(job.job_id)
                done.append(f"scaled {job.job_id} to {job.num_instances}")
        except SchedulerError as exc:
            report.failed[job.job_id] = str(exc)
    return done


async def reconcile(ctx: OpContext) -> ReconcileReport:
    """One round over every deployed app. Never raises for a scheduler failure: the failures
    are in the report and the next round tries again.

    An app is read first without claiming it; only one with something to converge is
    claimed (and read again under the claim). Users then wait for a round only where it
    changes something, not behind every read of every app.
    """
    report = ReconcileReport()
    async with ctx.sessions() as session:
        apps = list(
            (
                await session.execute(
                    select(App).where(App.meta_version.is_not(None)).order_by(App.name)
                )
            ).scalars()
        )
    desired: set[str] = set()
    for app in apps:
        if app.apptype == AppType.RESOURCE:
            continue
        reading = await _read(ctx, app.name)
        if reading is None:
            continue
        desired |= reading.wanted
        work = reading.needs_work()
        if reading.unreadable:
            report.failed.update(dict.fromkeys(reading.wanted, reading.unreadable))
        try:
            async with ctx.services.guard.app(app.name, RECONCILIATION):
                # Without work the claim is let go at once: it only tells whether a user's
                # operation is on (its app's removals then wait for the next round).
                if work:
                    desired |= await _reconcile_app(ctx, app.name, report)
                else:
                    report.held.update(reading.holds())  # still held back, quietly
        except Conflict:
            report.skipped.append(app.name)
    removed, failed = await retry_removals(ctx, desired, busy=set(report.skipped))
    report.removed += removed
    report.failed.update(failed)
    return report


@dataclass
class _Reading:
    """One app's desired jobs beside what the scheduler runs."""

    jobs: list[ProcJob]
    states: dict[str, ProcState]
    interrupted: bool  # a deploy a stopped console left half-done
    failed_hashes: dict[str, str]  # job id -> the spec hash recorded as rolled back
    unreadable: str = ""  # why the scheduler's states could not be read

    @property
    def wanted(self) -> set[str]:
        return {job.job_id for job in self.jobs}

    def holds(self) -> dict[str, str]:
        """The jobs held back because the scheduler rolled their spec back, and why."""
        found = {}
        for job in self.jobs:
            state = self.states.get(job.job_id, ProcState.missing(job.job_id))
            if state.rollout is not RolloutStatus.RUNNING and _rolled_back(
                job, state, self.failed_hashes.get(job.job_id, "")
            ):
                found[job.job_id] = _held_because(job, state)
        return found

    def needs_work(self) -> bool:
        """Whether `_reconcile_app` would change anything (the scheduler, or a row)."""
        if self.unreadable:
            return False
        if self.interrupted:
            return True
        for job in self.jobs:
            state = self.states.get(job.job_id, ProcState.missing(job.job_id))
            recorded = self.failed_hashes.get(job.job_id, "")
            if state.rollout is RolloutStatus.RUNNING:
                if recorded:
                    return True  # a recorded hold the new rollout moves past
                continue
            if _rolled_back(job, state, recorded):
                if recorded != job.spec_hash():
                    return True  # newly held: written down
                continue
            if recorded or not state.exists or state.spec_hash != job.spec_hash():
                return True
            if state.num_instances != job.num_instances:
                return True
        return False


async def _read(ctx: OpContext, name: str) -> _Reading | None:
    """The app's jobs and their states; None when it is gone or not deployed."""
    async with ctx.sessions() as session:
        app = await queries.app_by_name(session, name)
        if app is None or app.meta_version is None:
            return None
        jobs = await _desired_jobs(ctx, session, app)
        interrupted = app.status is AppStatus.DEPLOYING
        failed_hashes = {
            _job_id(name, proc): proc.failed_spec_hash
            for proc in await queries.procs_of(session, app.id)
            if proc.failed_spec_hash
        }
    reading = _Reading(jobs, {}, interrupted, failed_hashes)
    try:
        reading.states = await ctx.scheduler.states([job.job_id for job in jobs]) if jobs else {}
    except SchedulerError as exc:
        reading.unreadable = str(exc)
    return reading


async def _reconcile_app(ctx: OpContext, name: str, report: ReconcileReport) -> set[str]:
    """Converge one app; returns its desired job ids."""
    reading = await _read(ctx, name)
    if reading is None:
        return set()
    jobs, states = reading.jobs, reading.states
    interrupted, failed_hashes = reading.interrupted, reading.failed_hashes
    wanted = reading.wanted
    if reading.unreadable:
        report.failed.update(dict.fromkeys(wanted, reading.unreadable))
        return wanted
    done = await _converge(ctx, jobs, states, report, failed_hashes)
    failed = {job.job_id: report.failed[job.job_id] for job in jobs if job.job_id in report.failed}
    hashes = {job.job_id: job.spec_hash() for job in jobs}
    held = {job_id: hashes[job_id] for job_id in wanted if job_id in report.held}
    # Newly held, or a recorded failure the desired spec has moved past: write them down.
    changed_holds = {
        job_id for job_id in wanted if held.get(job_id, "") != failed_hashes.get(job_id, "")
    }
    done += [
        f"held back {job_id}: {report.held[job_id]}" for job_id in held if job_id in changed_holds
    ]
    if not done and not interrupted and not changed_holds:
        return wanted
    async with ctx.sessions.begin() as session:
        row = await queries.app_by_name(session, name)
        if row is None:
            return wanted
        if interrupted and not failed:
            row.status = AppStatus.DEPLOYED
            report.finished.append(name)
            done.append("finished an interrupted deploy")
        for proc in await queries.procs_of(session, row.id):
            job_id = _job_id(name, proc)
            if job_id in changed_holds:
                proc.failed_spec_hash = held.get(job_id, "")
                if job_id in held:
                    proc.last_error = report.held[job_id]
        if not failed:
            # Every job now matches the desired state: the errors that said otherwise are
            # history (they stay in the audit log); a release held back keeps its error.
            row.last_error = ""
            for proc in await queries.procs_of(session, row.id):
                if _job_id(name, proc) not in held:
                    proc.last_error = ""
        if done:
            audit.record(
                session,
                ctx.principal,
                "RECONCILE",
                name,
                meta_version=row.meta_version,
                message="; ".join(done),
            )
    async with ctx.sessions() as session:
        row = await queries.app_by_name(session, name)
    if row is not None:
        ctx.services.bus.publish_app(app_view(row))
    return wanted


def _job_id(app: str, proc: Proc) -> str:
    return f"{app}.{proc.proc_type}.{proc.name}"


async def reconcile_forever(
    ctx: OpContext,
    *,
    interval: float,
    on_round: Callable[[ReconcileReport | None], None] | None = None,
) -> None:
    """Reconcile now, then every `interval` seconds, until cancelled.

    `on_round` is told each round's report (None for a round that failed), for metrics.
    """
    while True:
        try:
            report = await reconcile(ctx)
        except Exception:  # one bad round (the database away) must not end reconciliation
            log.exception("reconciliation round failed")
            if on_round is not None:
                on_round(None)
        else:
            if on_round is not None:
                on_round(report)
            if report.applied or report.scaled or report.finished or report.failed:
                log.info(
                    "reconciled: applied=%s scaled=%s finished=%s failed=%s",
                    report.applied,
                    report.scaled,
                    report.finished,
                    report.failed,
                )
        await asyncio.sleep(interval)
