"""Names in paths never reach the file system: traversal attempts are refused or not found."""

from __future__ import annotations

import pytest

from backends.errors import SchedulerRejected
from backends.local import LocalScheduler
from backends.types import ProcJob
from tests.rest_compat.helpers import Rest


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/apps/..%2F..%2Fetc/",
        "/api/v1/apps/../../etc/passwd/",
        "/api/v1/apps/hello/procs/..%2Fweb/",
        "/api/v1/repos/%2e%2e/",
    ],
)
async def test_traversal_in_paths_finds_nothing(rest: Rest, path: str) -> None:
    response = await rest.request("GET", path)
    assert response.status_code in (301, 404)
    assert b"root:" not in response.content


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "a\x00b", "x" * 300])
async def test_such_names_cannot_be_registered(rest: Rest, name: str) -> None:
    response = await rest.request("POST", "/api/v1/repos/", {"appname": name})
    assert response.status_code == 400


async def test_the_local_backend_refuses_job_ids_that_are_not_file_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = ProcJob(
        app="../../evil",
        proc="web",
        proc_type="web",
        meta_version="1-" + "a" * 40,
        image="x",
        num_instances=1,
        cpu=0,
        memory_bytes=0,
        cmd=("true",),
    )
    async with LocalScheduler(data_dir=tmp_path, stop_on_exit=True) as scheduler:
        with pytest.raises(SchedulerRejected):
            await scheduler.apply(job)
    assert not (tmp_path.parent / "evil").exists()
