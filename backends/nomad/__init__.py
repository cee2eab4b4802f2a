"""The Nomad backend: one Nomad job per LAIN proc, over Nomad's HTTP API."""

from __future__ import annotations

from backends.nomad.options import JobOptions
from backends.nomad.scheduler import NomadScheduler
from backends.nomad.settings import NomadSettings

__all__ = ["JobOptions", "NomadScheduler", "NomadSettings"]
