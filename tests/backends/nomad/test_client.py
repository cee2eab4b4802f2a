"""The thread bridge and the error seam, against the fake Nomad on a real socket."""

from __future__ import annotations

import dataclasses

import anyio
import pytest
import requests

from backends.errors import (
    JobNotFound,
    SchedulerConflict,
    SchedulerRejected,
    SchedulerUnavailable,
)
from backends.nomad.client import NomadClient, _Api
from backends.nomad.jobs import render_job
from backends.nomad.settings import NomadSettings
from tests.backends.nomad.helpers import REQUEST_TIMEOUT, make_job, wait_until
from tests.fakes.nomad import FakeNomad
from tests.fakes.nomad_server import FakeNomadServer


@pytest.fixture
def client(settings: NomadSettings) -> NomadClient:
    return NomadClient(settings, timeout=REQUEST_TIMEOUT)


def _rendered() -> dict[str, object]:
    return render_job(make_job(), namespace="default")


async def test_register_then_read_round_trips_through_python_nomad(
    client: NomadClient, fake: FakeNomad
) -> None:
    reply = await client.register(_rendered())
    assert set(reply) >= {"EvalID", "EvalCreateIndex", "JobModifyIndex", "Warnings", "Index"}
    job = await client.read_job("hello.web.web")
    assert job is not None
    assert job["Version"] == 0
    assert job["JobModifyIndex"] == reply["JobModifyIndex"]
    assert await client.read_job("nope.web.web") is None


async def test_requests_carry_token_namespace_and_region(nomad_server: FakeNomadServer) -> None:
    nomad_server.fake.token = "tok-123"
    nomad_server.fake.namespaces.add("lain")
    settings = NomadSettings(
        address=nomad_server.url, token="tok-123", namespace="lain", region="global"
    )
    client = NomadClient(settings, timeout=REQUEST_TIMEOUT)
    await client.register(render_job(make_job(), namespace="lain"))
    await client.list_allocations(["hello.web.web"])
    for seen in nomad_server.seen:
        assert seen.params.get("namespace") == ["lain"]
        assert seen.params.get("region") == ["global"]
    assert nomad_server.fake.jobs[("lain", "hello.web.web")]


async def test_wrong_token_is_unavailable_and_says_to_check_the_token(
    client: NomadClient, fake: FakeNomad
) -> None:
    fake.token = "the-right-one"
    with pytest.raises(SchedulerUnavailable, match=r"denied.*Permission denied.*NOMAD_TOKEN"):
        await client.register(_rendered())


async def test_validation_error_is_rejected_with_nomads_words(client: NomadClient) -> None:
    job = _rendered()
    job["Priority"] = 500
    with pytest.raises(SchedulerRejected) as caught:
        await client.register(job)
    # The go-multierror wrapping is taken off; Nomad's own sentence stays.
    assert str(caught.value) == (
        "Nomad rejected register job hello.web.web: Job.Priority: must be <= 100, got 500"
    )


@pytest.mark.parametrize(
    ("body", "status", "starts"),
    [
        ({"EnforceIndex": True, "JobModifyIndex": 1}, 500, "Enforcing job modify index 1"),
        ({"EnforceIndex": True, "JobModifyIndex": 0}, 500, "Enforcing job modify index 0"),
        ({"Priority": 500}, 500, "1 error occurred:\n\t* Job.Priority"),
        ({"Bogus": 1}, 400, "Job.Bogus: unknown field"),
    ],
)
async def test_fake_answers_refusals_with_nomads_status_codes(
    nomad_server: FakeNomadServer, body: dict[str, object], status: int, starts: str
) -> None:
    # What the client must classify: a stale check-and-set and a failed validation are
    # uncoded RPC errors, so 500 (command/agent/http.go); a body that does not decode is 400.
    job = _rendered()
    await anyio.to_thread.run_sync(
        lambda: requests.post(f"{nomad_server.url}/v1/jobs", json={"Job": job}, timeout=5)
    )
    extra = {k: v for k, v in body.items() if k in ("EnforceIndex", "JobModifyIndex")}
    job.update({k: v for k, v in body.items() if k not in extra})
    answer = await anyio.to_thread.run_sync(
        lambda: requests.post(f"{nomad_server.url}/v1/jobs", json={"Job": job, **extra}, timeout=5)
    )
    assert (answer.status_code, answer.text[: len(starts)]) == (status, starts)


async def test_stale_check_and_set_is_a_conflict_not_an_outage(
    client: NomadClient, fake: FakeNomad
) -> None:
    await client.register(_rendered())
    with pytest.raises(SchedulerConflict, match="the job changed meanwhile") as caught:
        await client.register(_rendered(), enforce_index=0)
    assert "Enforcing job modify index 0: job already exists" in str(caught.value)


async def test_changing_the_job_type_is_rejected(client: NomadClient) -> None:
    await client.register(_rendered())
    batch = _rendered()
    batch["Type"] = "batch"
    del batch["Update"]
    with pytest.raises(SchedulerRejected, match='cannot update job from type "service"'):
        await client.register(batch)


async def test_unknown_job_is_job_not_found(client: NomadClient) -> None:
    with pytest.raises(JobNotFound) as caught:
        await client.scale("nope.web.web", "web", 2)
    assert caught.value.job_id == "nope.web.web"


async def test_check_and_set_mismatch_is_a_conflict(client: NomadClient) -> None:
    reply = await client.register(_rendered())
    with pytest.raises(SchedulerConflict, match="changed meanwhile"):
        await client.register(_rendered(), enforce_index=reply["JobModifyIndex"] - 1)


async def test_server_error_is_unavailable_naming_nomad_and_the_status(
    client: NomadClient, nomad_server: FakeNomadServer
) -> None:
    nomad_server.faults.http_500 = True
    with pytest.raises(SchedulerUnavailable) as caught:
        await client.read_job("hello.web.web")
    message = str(caught.value)
    assert message.startswith(f"Nomad at {nomad_server.url} answered 500 to read job")
    assert "injected server error" in message
    assert caught.value.__cause__ is not None  # the original is kept, not shown


async def test_hang_is_unavailable_after_the_timeout(
    client: NomadClient, nomad_server: FakeNomadServer
) -> None:
    nomad_server.faults.hang = True
    with pytest.raises(SchedulerUnavailable, match=r"did not answer list jobs within 1s"):
        await client.list_jobs()


async def test_refused_connection_is_unavailable_saying_so(
    client: NomadClient, nomad_server: FakeNomadServer
) -> None:
    nomad_server.faults.refuse_connections()
    with pytest.raises(SchedulerUnavailable, match=r"is unreachable \(read the leader\).*refused"):
        await client.leader()
    nomad_server.faults.accept_connections()
    assert await client.leader() == "127.0.0.1:4647"


async def test_tls_to_a_plain_http_server_fails_as_unavailable(
    nomad_server: FakeNomadServer,
) -> None:
    settings = NomadSettings(address=nomad_server.url.replace("http://", "https://"))
    client = NomadClient(settings, timeout=REQUEST_TIMEOUT)
    with pytest.raises(SchedulerUnavailable, match="TLS"):
        await client.leader()


def test_python_nomad_is_built_with_tls_verification_and_no_environment(
    settings: NomadSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMAD_TOKEN", "from-the-environment")
    api = _Api(settings, 3.0)
    assert api.job.verify is True
    assert api.job.token is None
    assert api.job.timeout == 3.0
    with_ca = dataclasses.replace(settings, ca_cert="/etc/ssl/certs/ca-certificates.crt")
    assert _Api(with_ca, 3.0).jobs.verify == "/etc/ssl/certs/ca-certificates.crt"


async def test_limiter_bounds_the_calls_in_flight(
    settings: NomadSettings, nomad_server: FakeNomadServer
) -> None:
    client = NomadClient(settings, max_threads=2, timeout=5.0)
    nomad_server.faults.hang = True
    outcomes: list[str] = []

    async def call() -> None:
        try:
            await client.leader()
            outcomes.append("ok")
        except SchedulerUnavailable:
            outcomes.append("failed")

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(call)
        await wait_until(lambda: len(nomad_server.seen) == 2, message="two requests in flight")
        limiter = client._limiter
        assert limiter.borrowed_tokens == 2
        assert limiter.statistics().tasks_waiting == 3
        nomad_server.faults.hang = False
    assert len(outcomes) == 5
    assert len(nomad_server.seen) == 5
    client.close()


async def test_filtered_lists_split_long_job_lists(client: NomadClient, fake: FakeNomad) -> None:
    job_ids = [f"app{i}.web.web" for i in range(45)]
    found, index = await client.list_allocations(job_ids)
    assert found == []
    assert index == fake.index
