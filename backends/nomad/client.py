"""The one door to Nomad's HTTP API for commands and reads.

python-nomad is synchronous (requests), so every call runs in a worker thread behind a
`CapacityLimiter` owned by this client; Starlette's shared thread pool is never used. Each
worker thread gets its own `requests.Session`, because sharing one between threads is not
documented as safe (psf/requests#2766).

Every failure leaves through `_nomad_errors`, the only place that knows python-nomad's and
requests' exceptions: callers see `backends.errors` types only.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import nomad.api
import requests
from nomad.api import exceptions as nomad_exceptions
from nomad.api.client import allocation as client_allocation
from nomad.api.status import Leader
from requests.adapters import HTTPAdapter

from backends.errors import (
    JobNotFound,
    SchedulerConflict,
    SchedulerError,
    SchedulerRejected,
    SchedulerUnavailable,
)
from backends.nomad.allocs import check_verdict
from backends.nomad.settings import NomadSettings

__all__ = ["NomadClient"]

T = TypeVar("T")

# Job IDs per `filter=` expression on list endpoints, so URLs stay well under 8 KiB.
_FILTER_CHUNK = 20
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")\]]+")
# nomad/structs/job.go, RegisterEnforceIndexErrPrefix.
_ENFORCE_INDEX = "Enforcing job modify index"
# hashicorp/go-multierror's ListFormatFunc: "N error(s) occurred:\n\t* a\n\t* b\n\n".
# validateJobUpdate (nomad/job_endpoint.go): changes a job may never make, plain errors.
_UPDATE_REFUSED = ("cannot update job from type", "cannot update non-periodic job")
_MULTIERROR = re.compile(r"^\d+ errors? occurred:\n\t\* (.*)$", re.DOTALL)
# Refusals of a promotion (nomad/deployment_endpoint.go Promote, structs/errors.go,
# state/state_store.go UpdateDeploymentPromotion), all answered 500 as uncoded errors.
_PROMOTE_GONE = ("deployment not found", "can't promote terminal deployment")
_PROMOTE_UNHEALTHY = re.compile(r'Task group "[^"]*" has \d+/\d+ healthy allocations')


class _Api:
    """The python-nomad endpoints one worker thread uses, sharing that thread's session."""

    def __init__(self, settings: NomadSettings, timeout: float) -> None:
        self.session = requests.Session()
        self.session.auth = settings.basic_auth
        if settings.tls_server_name:
            self.session.mount("https://", _ServerNameAdapter(settings.tls_server_name))
        # Everything is passed explicitly: python-nomad's top-level `Nomad` would fall back
        # to os.environ for unset values and defaults to verify=False.
        options: dict[str, Any] = {
            "address": settings.address,
            "namespace": settings.namespace,
            "token": settings.token or None,
            "timeout": timeout,
            "verify": settings.verify,
            "cert": settings.cert or (),
            "region": settings.region or None,
            "session": self.session,
        }
        self.job = nomad.api.Job(**options)
        self.jobs = nomad.api.Jobs(**options)
        self.allocations = nomad.api.Allocations(**options)
        self.allocation = nomad.api.Allocation(**options)
        self.client_allocation = client_allocation(**options)
        self.deployments = nomad.api.Deployments(**options)
        self.deployment = nomad.api.Deployment(**options)
        self.leader = Leader(**options)


class _ServerNameAdapter(HTTPAdapter):
    """Connects to NOMAD_ADDR but sends `server_name` as SNI and checks the certificate
    against it, as the nomad CLI does with NOMAD_TLS_SERVER_NAME (servers' certificates
    name `server.<region>.nomad`, not the address they are reached at)."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


class NomadClient:
    """Nomad's jobs, allocations and deployments as awaitable calls.

    Every method raises `SchedulerUnavailable` (naming Nomad's address and what failed) when
    Nomad cannot be reached, times out or answers with a server error, and the more specific
    `JobNotFound`, `SchedulerConflict` or `SchedulerRejected` where documented.
    """

    def __init__(
        self, settings: NomadSettings, *, max_threads: int = 8, timeout: float = 10.0
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._settings = settings
        self._timeout = timeout
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._write_index = 0

    @property
    def address(self) -> str:
        return self._settings.address

    @property
    def write_index(self) -> int:
        """The Raft index our own writes reached: a view of Nomad that is older than it
        would not show our last change yet."""
        return self._write_index

    def wrote_past(self, index: int) -> None:
        """A write whose answer carries no index (an allocation restart) changes Nomad
        after `index`, the newest index seen before it."""
        with self._sessions_lock:
            self._write_index = max(self._write_index, index + 1)

    def _wrote(self, reply: T) -> T:
        """Note the index in a job write's answer (a dict, or the raw response)."""
        body: Any = reply
        if isinstance(reply, requests.Response):
            try:
                body = reply.json()
            except ValueError:
                body = {}
        if isinstance(body, dict):
            found = [body.get(key) for key in ("Index", "JobModifyIndex", "EvalCreateIndex")]
            numbers = [value for value in found if isinstance(value, int)]
            with self._sessions_lock:
                self._write_index = max(self._write_index, *numbers, 0)
        return reply

    def close(self) -> None:
        """Close the HTTP sessions of every worker thread that made a call."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    async def call(
        self,
        what: str,
        fn: Callable[[_Api], T],
        *,
        job_id: str | None = None,
        missing: Callable[[], SchedulerError] | None = None,
        request_timeout: float | None = None,
    ) -> T:
        """Run `fn` in a worker thread; `what` names the operation in error messages.

        A 404 becomes `missing()` when given, else JobNotFound(job_id) when a job is named.
        `request_timeout` is what `fn` passes to its request when not the client's own.
        """

        def run() -> T:
            return fn(self._api())

        with self._nomad_errors(
            what, job_id=job_id, missing=missing, timeout=request_timeout or self._timeout
        ):
            # Not abandoned on cancellation: the token stays taken until the thread is
            # done, so the bound holds; the request timeout bounds the wait.
            return await anyio.to_thread.run_sync(run, limiter=self._limiter)

    def _api(self) -> _Api:
        api: _Api | None = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = _Api(self._settings, self._timeout)
            with self._sessions_lock:
                self._sessions.append(api.session)
        return api

    # -- jobs ---------------------------------------------------------------------------

    async def register(
        self,
        job: dict[str, Any],
        *,
        enforce_index: int | None = None,
        preserve_counts: bool = False,
    ) -> dict[str, Any]:
        """Register (create or update) a job. With `enforce_index` the write only happens
        if the job's JobModifyIndex still equals it (SchedulerConflict otherwise)."""
        body: dict[str, Any] = {"Job": job}
        if enforce_index is not None:
            body["EnforceIndex"] = True
            body["JobModifyIndex"] = enforce_index
        if preserve_counts:
            body["PreserveCounts"] = True
        job_id = str(job["ID"])
        return await self.call(
            f"register job {job_id}",
            lambda api: self._wrote(_object(api.jobs.register_job(body))),
            job_id=job_id,
        )

    async def read_job(self, job_id: str) -> dict[str, Any] | None:
        """The full job, or None when Nomad has no job with that ID."""
        try:
            return await self.call(
                f"read job {job_id}", lambda api: _object(api.job.get_job(job_id)), job_id=job_id
            )
        except JobNotFound:
            return None

    async def job_versions(self, job_id: str) -> list[dict[str, Any]]:
        """The versions Nomad keeps of a job (each a full job), newest first."""
        body = await self.call(
            f"read versions of job {job_id}",
            lambda api: _object(api.job.get_versions(job_id)),
            job_id=job_id,
        )
        versions = body.get("Versions")
        if not isinstance(versions, list):
            raise SchedulerUnavailable(
                f"Nomad at {self.address} gave an unexpected answer to read versions of job "
                f"{job_id}: no Versions list"
            )
        return [version for version in versions if isinstance(version, dict)]

    async def stop(self, job_id: str, *, purge: bool) -> None:
        """Stop a job (kept, with Stop=true) or stop and purge it. No error if it is gone."""
        what = f"{'purge' if purge else 'stop'} job {job_id}"
        params = {"purge": "true"} if purge else None
        try:
            await self.call(
                what,
                lambda api: self._wrote(api.job.request(job_id, method="delete", params=params)),
                job_id=job_id,
            )
        except JobNotFound:
            # Nomad answers 200 for a job it does not know; a 404 can only mean the same.
            return

    async def scale(self, job_id: str, group: str, count: int) -> None:
        """Set a group's count through the scale endpoint (python-nomad does not wrap it).

        Raises JobNotFound, and SchedulerConflict while a deployment of the job runs.
        """
        body = {
            "Count": count,
            "Target": {"Group": group},
            "Message": f"lain-console: scale {group} to {count}",
        }
        await self.call(
            f"scale job {job_id} to {count}",
            lambda api: self._wrote(api.job.request(job_id, "scale", method="post", json=body)),
            job_id=job_id,
        )

    async def force_reschedule(self, job_id: str) -> None:
        """Ask Nomad to replace the job's failed allocations now, whatever their policy."""
        body = {"JobID": job_id, "EvalOptions": {"ForceReschedule": True}}
        await self.call(
            f"reschedule failed allocations of job {job_id}",
            lambda api: self._wrote(api.job.request(job_id, "evaluate", method="post", json=body)),
            job_id=job_id,
        )

    async def list_jobs(self) -> tuple[list[dict[str, Any]], int]:
        """Every job stub of the namespace with its Meta, and the answer's X-Nomad-Index."""
        return await self.call(
            "list jobs",
            lambda api: _indexed(api.jobs.request(method="get", params={"meta": "true"})),
        )

    # -- allocations and deployments ------------------------------------------------------

    async def list_allocations(self, job_ids: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """Allocation stubs (with ports) of the given jobs, and the lowest X-Nomad-Index.

        Uses /v1/allocations?resources=true: the per-job endpoint leaves out
        AllocatedResources, where the host ports are.
        """
        return await self._list_filtered(
            "list allocations",
            job_ids,
            lambda api, params: api.allocations.request(
                method="get", params={**params, "resources": "true"}
            ),
        )

    async def list_deployments(self, job_ids: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """Deployments of the given jobs, and the lowest X-Nomad-Index."""
        return await self._list_filtered(
            "list deployments",
            job_ids,
            lambda api, params: api.deployments.request(method="get", params=params),
        )

    async def promote_deployment(self, deployment_id: str, *, job_id: str) -> None:
        """Promote every canary of a running deployment (PUT /v1/deployment/promote/:id,
        `All`, as `nomad deployment promote` does). Raises SchedulerConflict when the
        deployment has ended or its canaries are not all healthy yet."""
        body = {"DeploymentID": deployment_id, "All": True}
        await self.call(
            f"promote the canaries of job {job_id}",
            lambda api: self._wrote(
                api.deployment.request("promote", deployment_id, method="post", json=body)
            ),
            missing=lambda: SchedulerConflict(
                f"the rollout of job {job_id} is gone; nothing to promote"
            ),
        )

    async def restart_allocation(
        self, alloc_id: str, task: str, *, what: str, kill_timeout: float
    ) -> None:
        """Restart a running allocation's task in place (python-nomad's wrapper sends no
        body, so it could not name the task).

        Nomad answers only once the old task is dead (client/allocrunner/taskrunner/
        lifecycle.go, Restart "blocks until existing task exits"), which can take the
        task's whole `kill_timeout`: the request may take that much longer.
        """
        timeout = self._timeout + kill_timeout
        await self.call(
            what,
            lambda api: api.client_allocation.request(
                alloc_id, "restart", method="post", json={"TaskName": task}, timeout=timeout
            ),
            missing=lambda: SchedulerConflict(f"{what}: the allocation is gone"),
            request_timeout=timeout,
        )

    async def read_allocation(self, alloc_id: str, *, what: str) -> dict[str, Any]:
        """One allocation in full; SchedulerConflict when it is gone."""
        return await self.call(
            what,
            lambda api: _object(api.allocation.get_allocation(alloc_id)),
            missing=lambda: SchedulerConflict(f"{what}: the allocation is gone"),
        )

    async def allocation_checks(self, alloc_id: str) -> dict[str, Any]:
        """Nomad-native check results of one allocation, keyed by check ID."""
        return await self.call(
            f"read checks of allocation {alloc_id}",
            lambda api: _object(api.allocation.request(alloc_id, "checks", method="get").json()),
            missing=lambda: SchedulerUnavailable(f"allocation {alloc_id} is gone"),
        )

    async def check_verdicts(self, alloc_ids: Sequence[str]) -> dict[str, bool]:
        """The live health of each allocation whose checks have all run (see
        `check_verdict`); one that cannot be read or is still pending is left out."""
        results: dict[str, bool] = {}

        async def check(alloc_id: str) -> None:
            try:
                verdict = check_verdict(await self.allocation_checks(alloc_id))
            except SchedulerError:
                return  # health stays as it was; the rest of the answer is still good
            if verdict is not None:
                results[alloc_id] = verdict

        # The limiter bounds how many of these run at once.
        async with anyio.create_task_group() as group:
            for alloc_id in alloc_ids:
                group.start_soon(check, alloc_id)
        return results

    async def leader(self) -> str:
        """The address of the region's Raft leader; empty when there is none."""
        return await self.call("read the leader", lambda api: str(api.leader.get_leader()))

    async def _list_filtered(
        self,
        what: str,
        job_ids: Sequence[str],
        request: Callable[[_Api, dict[str, str]], requests.Response],
    ) -> tuple[list[dict[str, Any]], int]:
        items: list[dict[str, Any]] = []
        indexes: list[int] = []
        for start in range(0, len(job_ids), _FILTER_CHUNK):
            chunk = job_ids[start : start + _FILTER_CHUNK]
            # go-bexpr, evaluated against the full object on the server.
            params = {"filter": " or ".join(f'JobID == "{job_id}"' for job_id in chunk)}

            def read(
                api: _Api, params: dict[str, str] = params
            ) -> tuple[list[dict[str, Any]], int]:
                return _indexed(request(api, params))

            found, index = await self.call(what, read)
            items.extend(found)
            indexes.append(index)
        return items, min(indexes, default=0)

    # -- the seam -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _nomad_errors(
        self,
        what: str,
        *,
        job_id: str | None,
        missing: Callable[[], SchedulerError] | None,
        timeout: float,
    ) -> Iterator[None]:
        where = f"Nomad at {self._settings.address}"
        try:
            yield
        except nomad_exceptions.URLNotFoundNomadException as exc:
            if missing is not None:
                raise missing() from exc
            if job_id is not None:
                raise JobNotFound(job_id) from exc
            raise SchedulerUnavailable(f"{where} has no such object ({what}): 404") from exc
        except nomad_exceptions.BadRequestNomadException as exc:
            raise _refusal(what, _text(exc)) or SchedulerRejected(
                f"Nomad rejected {what}: {_text(exc)}"
            ) from exc
        except nomad_exceptions.URLNotAuthorizedNomadException as exc:
            raise SchedulerUnavailable(
                f"{where} denied {what} ({_text(exc)}); check NOMAD_TOKEN and its ACL policy"
            ) from exc
        except nomad_exceptions.BaseNomadException as exc:
            cause = exc.nomad_resp
            if isinstance(cause, requests.Response):
                # Nomad answers 500 for every uncoded RPC error (command/agent/http.go,
                # errCodeFromHandler), among them a stale check-and-set and a job that
                # fails validation: only the body tells those from a server in trouble.
                refused = _refusal(what, _text(exc))
                if refused is not None:
                    raise refused from exc
                raise SchedulerUnavailable(
                    f"{where} answered {cause.status_code} to {what}: {_text(exc)}"
                ) from exc
            raise SchedulerUnavailable(_transport(where, what, cause, timeout)) from exc
        except requests.RequestException as exc:
            # Includes nomad's TimeoutNomadException, which is not a BaseNomadException.
            raise SchedulerUnavailable(_transport(where, what, exc, timeout)) from exc
        except _Malformed as exc:
            raise SchedulerUnavailable(
                f"{where} gave an unexpected answer to {what}: {exc}"
            ) from exc


def _refusal(what: str, text: str) -> SchedulerError | None:
    """The error a Nomad answer body means when it refuses the request itself (whatever
    its status), or None when it says the server failed."""
    if "active deployment" in text:
        # nomad/job_endpoint.go, Job.Scale: "job scaling blocked due to active deployment".
        return SchedulerConflict(
            f"Nomad refused to {what}: a deployment of the job is still running "
            f"({text}); retry when it has finished"
        )
    if _ENFORCE_INDEX in text:
        return SchedulerConflict(
            f"Nomad refused to {what}: the job changed meanwhile ({text}); read it again and retry"
        )
    if text in _PROMOTE_GONE:
        return SchedulerConflict(
            f"Nomad refused to {what}: the rollout has ended meanwhile ({text}); nothing to promote"
        )
    unhealthy = _PROMOTE_UNHEALTHY.findall(text)
    if unhealthy:
        return SchedulerConflict(
            f"Nomad refused to {what}: the canaries are not all healthy yet "
            f"({'; '.join(unhealthy)}); promote them once they are"
        )
    if text.startswith(_UPDATE_REFUSED):
        return SchedulerRejected(f"Nomad rejected {what}: {text}")
    found = _MULTIERROR.match(text)
    if found:
        # Job validation (nomad/job_endpoint_hooks.go) answers a go-multierror list.
        reasons = [line.strip() for line in found.group(1).split("\n\t* ") if line.strip()]
        return SchedulerRejected(f"Nomad rejected {what}: {'; '.join(reasons)}")
    return None


class _Malformed(Exception):
    """Nomad answered 2xx with a body of the wrong shape."""


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"expected a JSON object, got {type(value).__name__}")
    return value


def _indexed(response: requests.Response) -> tuple[list[dict[str, Any]], int]:
    body = response.json()
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise _Malformed("expected a JSON list of objects")
    try:
        index = int(response.headers.get("X-Nomad-Index", "0"))
    except ValueError:
        raise _Malformed("X-Nomad-Index is not a number") from None
    return body, index


def _text(exc: nomad_exceptions.BaseNomadException) -> str:
    response = exc.nomad_resp
    if isinstance(response, requests.Response):
        text = response.text.strip()
        return text[:500] if text else f"HTTP {response.status_code}"
    return str(response)


def _transport(where: str, what: str, cause: object, timeout: float) -> str:
    if isinstance(cause, requests.exceptions.JSONDecodeError):
        return f"{where} sent an unreadable answer to {what}"
    if isinstance(cause, requests.Timeout):
        return f"{where} did not answer {what} within {timeout:g}s"
    if isinstance(cause, requests.exceptions.SSLError):
        return f"{where}: TLS failed while trying to {what}: {_reason(cause)}"
    if isinstance(cause, requests.ConnectionError):
        return f"{where} is unreachable ({what}): {_reason(cause)}"
    return f"{where} failed to {what}: {_reason(cause)}"


def _reason(cause: object) -> str:
    text = str(cause)
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was closed before an answer"
    return text[:300] or type(cause).__name__
