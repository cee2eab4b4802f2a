"""The benchmark data: N apps x 3 procs x 3 instances, seeded through the real resolvers.

Every app is registered, gets one release and is deployed with `resolvers.repos`,
`resolvers.releases` and `resolvers.apps`, exactly as the API would do it, against a
`FakeScheduler`. The rows are therefore the product's own. The scheduler's jobs (the
running state) are kept beside the database so that every server process of a run can load
the same ones into its own in-memory scheduler.

Seeded databases are cached in the work directory, keyed by N and what the seed depends on
(`SEED_VERSION`, the lain.yaml, the fields of `ProcJob`).
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import time
from dataclasses import dataclass, fields
from pathlib import Path

from backends.types import ProcJob
from resolvers import apps, releases, repos
from resolvers.core.context import ANONYMOUS, OpContext, Services
from resolvers.core.events import EventBus
from store.engine import make_sessionmaker, open_engine
from store.migrate import upgrade
from tests.fakes.scheduler import FakeScheduler
from tests.releases import meta_version

__all__ = ["PROCS", "SEED_VERSION", "Dataset", "app_name", "dataset", "lain_yaml"]

# Bump when the seeded data changes: cached databases of another version are rebuilt.
SEED_VERSION = 1
PROCS = ("web", "worker.mail", "worker.jobs")  # 3 procs, 3 instances each
INSTANCES = 3


def app_name(index: int) -> str:
    return f"bench{index:05d}"


def lain_yaml(app: str) -> str:
    """A web proc with a port and a health check, and two workers: 3 instances each."""
    return f"""\
appname: {app}
build:
  base: golang
  script:
    - go build -o hello
web:
  cmd: ./hello --port 8080
  port: 8080
  num_instances: {INSTANCES}
  memory: 64m
  healthcheck: /health
  env:
    - GREETING=hi
    - TZ=Asia/Shanghai
worker.mail:
  cmd: ./hello --mail
  num_instances: {INSTANCES}
  memory: 32m
worker.jobs:
  cmd: ./hello --jobs
  num_instances: {INSTANCES}
  cpu: 1
"""


@dataclass(frozen=True, slots=True)
class Dataset:
    n: int
    directory: Path

    @property
    def db_path(self) -> Path:
        return self.directory / "lain-console.db"

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.db_path}"

    @property
    def jobs_path(self) -> Path:
        return self.directory / "jobs.pickle"

    @property
    def _done(self) -> Path:
        return self.directory / f"seeded-{_fingerprint()}"

    def jobs(self) -> dict[str, ProcJob]:
        """The scheduler's jobs as the deploys left them (a file this module wrote)."""
        loaded: dict[str, ProcJob] = pickle.loads(self.jobs_path.read_bytes())
        return loaded


def _fingerprint() -> str:
    """What a cached dataset depends on besides N: the seed itself and the shape of the
    pickled jobs (a ProcJob with other fields would not unpickle into the same thing)."""
    shape = [str(SEED_VERSION), lain_yaml("x"), *(f.name for f in fields(ProcJob))]
    return hashlib.sha1("\n".join(shape).encode()).hexdigest()[:12]


def dataset(workdir: Path, n: int, *, log: bool = True) -> Dataset:
    """The seeded dataset of `n` apps, built now unless the work directory has it."""
    found = Dataset(n=n, directory=workdir / f"n{n}")
    if found._done.exists():
        upgrade(found.url)  # a migration added since the seeding applies to the copy too
        return found
    found.directory.mkdir(parents=True, exist_ok=True)
    for stale in found.directory.iterdir():
        stale.unlink()
    started = time.perf_counter()
    upgrade(found.url)  # alembic runs its own event loop: before ours
    jobs = asyncio.run(_seed(found.url, n))
    found.jobs_path.write_bytes(pickle.dumps(jobs))
    found._done.touch()
    if log:
        print(f"  seeded N={n} through the resolvers in {time.perf_counter() - started:.1f}s")
    return found


async def _seed(url: str, n: int) -> dict[str, ProcJob]:
    scheduler = FakeScheduler()
    async with open_engine(url) as engine, scheduler:
        services = Services(sessions=make_sessionmaker(engine), scheduler=scheduler, bus=EventBus())
        ctx = OpContext(services=services, principal=ANONYMOUS)
        version = meta_version(1_700_000_000, "bench")
        for index in range(n):
            name = app_name(index)
            await repos.register_repo(ctx, name=name)
            await releases.publish_release(
                ctx, app=name, meta_version=version, lain_yaml=lain_yaml(name)
            )
            await apps.deploy_app(ctx, name=name)
    expected = n * len(PROCS)
    if len(scheduler.jobs) != expected:
        raise RuntimeError(f"seeding left {len(scheduler.jobs)} jobs, expected {expected}")
    return dict(scheduler.jobs)
