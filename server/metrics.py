"""The console's Prometheus metrics: one registry per app, and what feeds its families.

Labels stay bounded: route templates (never raw paths), GraphQL operation names capped at
the first `max_operation_names` seen, scheduler call names, domain error codes. App names
appear only with `LAIN_CONSOLE_METRICS_APP_LABELS=true` (on the rollout counter).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from backends.types import RolloutStatus, split_job_id

if TYPE_CHECKING:
    from backends.types import ProcState
    from resolvers.core.events import AppEvent
    from resolvers.reconcile import ReconcileReport

__all__ = ["Metrics"]

_NS = "lain_console"
# Requests and operations are mostly milliseconds; scheduler calls and lag reach seconds.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every family the console exports, in a registry of its own (never the global one, so
    that tests and several apps in one process do not collide). Also the event bus's
    observer: rollouts, subscriptions and event lag are derived there, in one place."""

    def __init__(self, *, app_labels: bool = False, max_operation_names: int = 100) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._app_labels = app_labels
        self._max_names = max_operation_names
        self._names: set[str] = set()
        r = self.registry
        self.requests = Histogram(
            f"{_NS}_http_request_duration_seconds",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=r,
            buckets=_FAST,
        )
        self.operations = Histogram(
            f"{_NS}_graphql_operation_duration_seconds",
            "GraphQL operations by type, name (anonymous, other past the cap) and outcome.",
            ("type", "operation", "outcome"),
            registry=r,
            buckets=_FAST,
        )
        self.mutations = Counter(
            f"{_NS}_mutations",
            "Mutations of both doors by kind (GraphQL's field name; REST routes count under the"
            " operation they run) and result code (OK, the domain error's code, or INTERNAL).",
            ("mutation", "code"),
            registry=r,
        )
        self.scheduler_calls = Histogram(
            f"{_NS}_scheduler_call_duration_seconds",
            "Scheduler calls by method, failed ones included.",
            ("call",),
            registry=r,
            buckets=_SLOW,
        )
        self.scheduler_errors = Counter(
            f"{_NS}_scheduler_call_errors",
            "Scheduler calls that raised, by method and error class.",
            ("call", "error"),
            registry=r,
        )
        self.websockets = Gauge(
            f"{_NS}_websocket_connections", "Open websocket connections.", registry=r
        )
        self.subscribers = Gauge(
            f"{_NS}_event_subscribers", "Subscribers reading the event bus now.", registry=r
        )
        self.event_lag = Histogram(
            f"{_NS}_event_lag_seconds",
            "From publishing a backend or app event to its delivery to a live subscriber.",
            registry=r,
            buckets=_FAST,
        )
        self.reconcile_rounds = Counter(
            f"{_NS}_reconcile_rounds",
            "Reconciler rounds by outcome (ok, partial: some jobs failed, error).",
            ("outcome",),
            registry=r,
        )
        self.drift_corrected = Counter(
            f"{_NS}_reconcile_drift_corrected",
            "Jobs the reconciler brought back to the desired state, by action.",
            ("action",),
            registry=r,
        )
        self.read_cache = Counter(
            f"{_NS}_read_cache_requests",
            "Reads the read cache was asked for, by outcome (hit; miss; unversioned: the "
            "state version could not be known, so nothing was cached).",
            ("outcome",),
            registry=r,
        )
        self.read_cache_bytes = Gauge(
            f"{_NS}_read_cache_bytes", "Bytes of answers the read cache holds.", registry=r
        )
        self.rollouts = Counter(
            f"{_NS}_rollouts",
            "Rollouts by transition (started, finished, stopped), from the event bus.",
            ("transition", "app") if app_labels else ("transition",),
            registry=r,
        )

    def operation_name(self, name: str | None) -> str:
        """A bounded label: the first names seen are kept, later new ones become `other`."""
        if not name:
            return "anonymous"
        if name in self._names:
            return name
        if len(self._names) >= self._max_names:
            return "other"
        self._names.add(name)
        return name

    # The event bus's observer.

    def proc_changed(self, before: ProcState | None, after: ProcState | None) -> None:
        if after is None or (before is not None and before.rollout is after.rollout):
            return
        was = before.rollout if before is not None else RolloutStatus.NONE
        if after.rollout is RolloutStatus.RUNNING:
            transition = "started"
        elif was is RolloutStatus.RUNNING:
            transition = "stopped" if after.rollout is RolloutStatus.STOPPED else "finished"
        else:
            return
        labels = [transition]
        if self._app_labels:
            labels.append(split_job_id(after.job_id)[0])
        self.rollouts.labels(*labels).inc()

    def mutation_finished(self, kind: str, code: str) -> None:
        self.mutations.labels(kind, code).inc()

    def subscribed(self, delta: int) -> None:
        self.subscribers.inc(delta)

    def delivered(self, event: AppEvent) -> None:
        if event.published_at is not None:
            # Wall clock: the event may have been published by another replica.
            self.event_lag.observe(max(0.0, time.time() - event.published_at))

    # The reconciler's rounds.

    def reconciled(self, report: ReconcileReport | None) -> None:
        if report is None:
            self.reconcile_rounds.labels("error").inc()
            return
        self.reconcile_rounds.labels("partial" if report.failed else "ok").inc()
        for action, jobs in (
            ("applied", report.applied),
            ("scaled", report.scaled),
            ("removed", report.removed),
        ):
            if jobs:
                self.drift_corrected.labels(action).inc(len(jobs))
