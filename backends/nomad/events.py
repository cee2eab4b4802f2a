"""Following Nomad's event stream (`/v1/event/stream`) with httpx.

One connection at a time, forever, until cancelled:

1. Subscribe to Job, Allocation and Deployment events of our namespace, from the last
   index processed + 1 (from the oldest buffered event the first time). Frames at or
   below the last index are dropped: Nomad re-sends its newest frame when asked for an
   index it has not reached yet.
2. Reconcile: list our jobs, their allocations and deployments, and publish what changed
   since the tracker last knew (everything, the first time). Nomad keeps a small event
   buffer and silently starts later when asked for an index it has dropped, so only a
   read made after the subscription exists guarantees nothing falls in between.
3. Apply the frames above the reconcile's index, in order, as they come. The socket is
   read in a tight loop into a bounded queue by its own task, so applying events never
   stalls the read (Nomad drops readers that fall behind its buffer; then we start over).
4. On any end (EOF, an error status, bad JSON, no line for `heartbeat_timeout` seconds
   while Nomad sends `{}` every 30 s, a failed reconcile) wait with exponential backoff
   and start again at 1. The backoff starts over only after a connection proved itself:
   it delivered an event, or it stayed up past a heartbeat (Nomad sends one `{}` at once
   on connect, nomad/stream/ndjson.go, so the second one is the proof). A stream that
   opens and drops at once (a proxy cutting long requests) therefore backs off to the
   cap instead of reconnecting, and reconciling, every half second. Each wait is
   jittered, so consoles cut off together do not come back together.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from backends.errors import SchedulerError
from backends.nomad.client import NomadClient
from backends.nomad.jobs import is_managed
from backends.nomad.reads import JobRead, read_jobs
from backends.nomad.tracker import Tracker

__all__ = ["EventStream"]

logger = logging.getLogger(__name__)

TOPICS = ("Job:*", "Allocation:*", "Deployment:*")
_QUEUE_FRAMES = 1024


class EventStream:
    """Keeps `tracker` in step with Nomad; run `run()` in a task and cancel it to stop.

    `connected`, `connections`, `last_index` and `last_failure` describe the stream for
    health checks and tests.
    """

    def __init__(
        self,
        client: NomadClient,
        http: httpx.AsyncClient,
        tracker: Tracker,
        *,
        namespace: str,
        region: str = "",
        timeout: float = 10.0,
        heartbeat_timeout: float = 45.0,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        if heartbeat_timeout <= 0:
            raise ValueError("heartbeat_timeout must be positive")
        self._client = client
        self._http = http
        self._tracker = tracker
        self._namespace = namespace
        self._region = region
        self._timeout = timeout
        self._heartbeat_timeout = heartbeat_timeout
        self._backoff_min, self._backoff_max = backoff
        self._connected_this_round = False
        # The longest wait before the next attempt; back to the minimum once a connection
        # proves itself, doubled (up to the maximum) after each attempt.
        self.backoff = self._backoff_min
        self.connected = False
        self.connections = 0
        self.reconciles = 0
        self.last_index: int | None = None
        self.last_failure = ""

    async def run(self) -> None:
        """Subscribe, reconcile, follow, repeat; returns only by cancellation."""
        while True:
            self.last_failure = await self._connect_once()
            self.connected = False
            # Between half and all of the backoff ("equal jitter").
            wait = self.backoff * random.uniform(0.5, 1.0)
            logger.warning("Nomad event stream: %s; retrying in %.1fs", self.last_failure, wait)
            await anyio.sleep(wait)
            self.backoff = min(self.backoff * 2, self._backoff_max)

    async def _connect_once(self) -> str:
        """One connection's life; returns why it ended."""
        self._connected_this_round = False
        start = self.last_index + 1 if self.last_index is not None else 0
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](_QUEUE_FRAMES)
        subscribed = anyio.Event()
        ended: list[str] = []

        async def read() -> None:
            try:
                async with send:
                    ended.append(await self._read(start, send, subscribed))
            finally:
                subscribed.set()  # also when it never got that far

        async with anyio.create_task_group() as group:
            group.start_soon(read)
            await subscribed.wait()
            if not self._connected_this_round:
                return ended[0] if ended else "the event stream did not open"
            try:
                reconciled = await self._reconcile()
                if self.last_index is not None and self.last_index + 1 < start:
                    # Nomad's index went back below where this subscription began (a
                    # cluster restored or rebuilt at this address): the frames it sends
                    # next are at or below `start` and would all be taken for replays.
                    group.cancel_scope.cancel()
                    return (
                        f"Nomad's index went back from {start - 1} to {self.last_index}; "
                        "subscribing again from there"
                    )
                await self._process(receive, after=reconciled)
            except SchedulerError as exc:
                # The stream may be fine, but we could not act on it: start over (the next
                # reconcile makes up for what is lost).
                group.cancel_scope.cancel()
                return f"could not follow Nomad: {exc}"
        return ended[0] if ended else "the event stream ended"

    async def _reconcile(self) -> int:
        """Publish what changed since we last knew; the index it reflects."""
        stubs, jobs_index = await self._client.list_jobs()
        ours = [str(stub["ID"]) for stub in stubs if "ID" in stub and is_managed(stub.get("Meta"))]
        snapshot = await read_jobs(self._client, ours)
        reads: dict[str, JobRead] = {
            job_id: read for job_id, read in snapshot.jobs.items() if read is not None
        }
        self._tracker.reset(reads)
        self.reconciles += 1
        read_index = min(jobs_index, snapshot.index) if snapshot.index else jobs_index
        if self.last_index is not None and max(jobs_index, snapshot.index) < self.last_index:
            # Indexes went backwards: a restored snapshot or another cluster at this
            # address. Our old position means nothing there.
            self.last_index = None
        self.last_index = max(self.last_index or 0, read_index)
        return read_index

    async def _read(
        self,
        start: int,
        send: MemoryObjectSendStream[dict[str, Any]],
        subscribed: anyio.Event,
    ) -> str:
        where = f"Nomad at {self._client.address}"
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("index", str(start)),
            ("namespace", self._namespace),
        ]
        params += [("topic", topic) for topic in TOPICS]
        if self._region:
            params.append(("region", self._region))
        # Read timeout above the heartbeat interval: silence means the connection is dead.
        timeout = httpx.Timeout(self._timeout, read=self._heartbeat_timeout)
        after = start - 1
        try:
            async with self._http.stream(
                "GET", "/v1/event/stream", params=params, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace").strip()[:300]
                    return f"{where} answered {response.status_code} to the event stream: {body}"
                self.connected = True
                self._connected_this_round = True
                self.connections += 1
                subscribed.set()
                heartbeats = 0
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        frame = json.loads(line)
                    except ValueError:
                        return f"{where} sent a line that is not JSON on the event stream"
                    if not isinstance(frame, dict) or not frame:
                        heartbeats += 1  # {} is a heartbeat; the first comes at once
                        if heartbeats > 1:
                            self.backoff = self._backoff_min  # proven: start over
                        continue
                    self.backoff = self._backoff_min
                    index = frame.get("Index")
                    if not isinstance(index, int) or index <= after:
                        continue  # replayed
                    after = index
                    await send.send(frame)
            return f"{where} closed the event stream"
        except httpx.ReadTimeout:
            return f"no event or heartbeat from {where} for {self._heartbeat_timeout:g}s"
        except httpx.TimeoutException:
            return f"{where} did not accept the event stream within {self._timeout:g}s"
        except httpx.TransportError as exc:
            return f"{where}: event stream failed: {type(exc).__name__}: {exc}"
        finally:
            self.connected = False

    async def _process(
        self, receive: MemoryObjectReceiveStream[dict[str, Any]], *, after: int
    ) -> None:
        """Apply frames until the stream ends; those at or below `after` are already in
        the reconcile. Raises SchedulerError when an event needs a read that fails."""
        async with receive:
            async for frame in receive:
                index = int(frame["Index"])
                if index <= after:
                    continue
                for event in frame.get("Events") or ():
                    if isinstance(event, dict):
                        await self._apply(event)
                self.last_index = max(self.last_index or 0, index)

    async def _apply(self, event: dict[str, Any]) -> None:
        payload = event.get("Payload") or {}
        topic = event.get("Topic")
        if topic == "Job" and isinstance(job := payload.get("Job"), dict):
            if event.get("Type") == "JobDeregistered":
                await self._job_deregistered(job)
            else:
                self._tracker.job_changed(job)
        elif topic == "Allocation" and isinstance(alloc := payload.get("Allocation"), dict):
            self._tracker.alloc_changed(alloc)
        elif topic == "Deployment" and isinstance(deployment := payload.get("Deployment"), dict):
            self._tracker.deployment_changed(deployment)

    async def _job_deregistered(self, job: dict[str, Any]) -> None:
        job_id = str(job.get("ID", ""))
        view = self._tracker.view(job_id)
        if view is None or int(job.get("ModifyIndex") or 0) < view.create_index:
            return  # not ours, or about an earlier job with this ID
        if not job.get("Stop"):
            # A deregister event without Stop carries the job as it was before a purge.
            self._tracker.job_removed(job_id)
            return
        # Stopped, or stopped earlier and now purged: the payload cannot tell which.
        current = await self._client.read_job(job_id)
        if current is None:
            self._tracker.job_removed(job_id)
        else:
            self._tracker.job_changed(current)
