"""lain.yaml texts and meta_versions for tests."""

from __future__ import annotations

import hashlib


def meta_version(timestamp: int, seed: str = "") -> str:
    return f"{timestamp}-{hashlib.sha1(f'{timestamp}{seed}'.encode()).hexdigest()}"


V1 = meta_version(1_700_000_001)
V2 = meta_version(1_700_000_002)
V3 = meta_version(1_700_000_003)


def two_proc_yaml(app: str = "hello", *, web_instances: int = 1, extra: str = "") -> str:
    """A web proc (with a health check) and a worker."""
    return f"""\
appname: {app}
web:
  cmd: python -m http.server
  port: 8080
  num_instances: {web_instances}
  memory: 64m
  healthcheck: /health
  env:
    - GREETING=hi
worker.jobs:
  cmd: python -c "import time; time.sleep(3600)"
  num_instances: 2
{extra}"""
