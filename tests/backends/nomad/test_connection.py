"""Reaching Nomad as the nomad CLI does: through a proxy asking for basic auth
(NOMAD_HTTP_AUTH) and over TLS to a certificate for another name than the address
(NOMAD_TLS_SERVER_NAME), for commands and the event stream alike."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.errors import SchedulerUnavailable
from backends.nomad import NomadSettings
from backends.nomad.client import NomadClient
from tests.backends.nomad.helpers import REQUEST_TIMEOUT, open_scheduler, wait_until
from tests.fakes.nomad_server import FakeNomadServer

SERVER_NAME = "server.global.nomad"  # what Nomad's own TLS guide names its servers


@pytest.fixture
def behind_a_proxy() -> Iterator[FakeNomadServer]:
    server = FakeNomadServer(basic_auth=("lain", "pa:ss")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "server.pem", tmp_path / "server-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={SERVER_NAME}",
            "-addext", f"subjectAltName=DNS:{SERVER_NAME}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def over_tls(certificate: tuple[str, str]) -> Iterator[FakeNomadServer]:
    server = FakeNomadServer(tls=certificate).start()
    try:
        yield server
    finally:
        server.stop()


def test_settings_read_server_name_and_http_auth_like_the_cli() -> None:
    settings = NomadSettings.from_environ(
        {"NOMAD_TLS_SERVER_NAME": SERVER_NAME, "NOMAD_HTTP_AUTH": "lain:pa:ss"}
    )
    assert settings.tls_server_name == SERVER_NAME
    assert settings.basic_auth == ("lain", "pa:ss")  # split at the first colon
    assert "pa:ss" not in repr(settings)
    assert NomadSettings.from_environ({"NOMAD_HTTP_AUTH": "lain"}).basic_auth == ("lain", "")
    with pytest.raises(ValueError, match="NOMAD_HTTP_AUTH must be user or user:password"):
        NomadSettings.from_environ({"NOMAD_HTTP_AUTH": ":x"})


async def test_http_auth_reaches_nomad_behind_a_proxy(behind_a_proxy: FakeNomadServer) -> None:
    without = NomadClient(NomadSettings(address=behind_a_proxy.url), timeout=REQUEST_TIMEOUT)
    with pytest.raises(SchedulerUnavailable, match="answered 401"):
        await without.list_jobs()
    settings = NomadSettings(address=behind_a_proxy.url, http_auth="lain:pa:ss")
    assert (await NomadClient(settings, timeout=REQUEST_TIMEOUT).list_jobs())[0] == []
    async with open_scheduler(settings) as scheduler:
        stream = scheduler.event_stream
        assert stream is not None
        await wait_until(lambda: stream.connected and stream.reconciles > 0, message="stream")


async def test_tls_server_name_is_what_the_certificate_is_checked_against(
    over_tls: FakeNomadServer, certificate: tuple[str, str]
) -> None:
    # The certificate names server.global.nomad, not 127.0.0.1.
    plain = NomadSettings(address=over_tls.url, ca_cert=certificate[0])
    with pytest.raises(SchedulerUnavailable, match="TLS failed"):
        await NomadClient(plain, timeout=REQUEST_TIMEOUT).list_jobs()
    named = NomadSettings(address=over_tls.url, ca_cert=certificate[0], tls_server_name=SERVER_NAME)
    assert (await NomadClient(named, timeout=REQUEST_TIMEOUT).list_jobs())[0] == []
    async with open_scheduler(named) as scheduler:
        stream = scheduler.event_stream
        assert stream is not None
        await wait_until(lambda: stream.connected and stream.reconciles > 0, message="stream")
