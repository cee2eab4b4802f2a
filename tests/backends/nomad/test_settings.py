from __future__ import annotations

from pathlib import Path

import pytest

from backends.nomad import NomadSettings


def test_from_environ_empty_takes_the_cli_defaults() -> None:
    settings = NomadSettings.from_environ({})
    assert settings == NomadSettings(address="http://127.0.0.1:4646", namespace="default")
    assert settings.verify is True
    assert settings.cert is None


def test_from_environ_reads_every_variable(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (tmp_path / name).write_text("-")
    settings = NomadSettings.from_environ(
        {
            "NOMAD_ADDR": "https://nomad.example:4646/",
            "NOMAD_TOKEN": "6d0b3e1a-0000-4000-8000-000000000001",
            "NOMAD_NAMESPACE": "lain-apps",
            "NOMAD_REGION": "cn-north",
            "NOMAD_CACERT": str(tmp_path / "ca.pem"),
            "NOMAD_CLIENT_CERT": str(tmp_path / "client.pem"),
            "NOMAD_CLIENT_KEY": str(tmp_path / "client-key.pem"),
            "NOMAD_SKIP_VERIFY": "false",
        }
    )
    assert settings.address == "https://nomad.example:4646"
    assert settings.token == "6d0b3e1a-0000-4000-8000-000000000001"
    assert settings.namespace == "lain-apps"
    assert settings.region == "cn-north"
    assert settings.verify == str(tmp_path / "ca.pem")
    assert settings.cert == (str(tmp_path / "client.pem"), str(tmp_path / "client-key.pem"))


def test_from_environ_capath_is_a_directory_to_verify_with(tmp_path: Path) -> None:
    settings = NomadSettings.from_environ({"NOMAD_CAPATH": str(tmp_path)})
    assert settings.verify == str(tmp_path)


def test_token_never_shows_in_repr() -> None:
    settings = NomadSettings(token="s3cr3t-token")
    assert "s3cr3t" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"NOMAD_ADDR": "127.0.0.1:4646"}, "NOMAD_ADDR"),
        ({"NOMAD_ADDR": "ftp://nomad:4646"}, "NOMAD_ADDR"),
        ({"NOMAD_ADDR": "http://nomad:notaport"}, "NOMAD_ADDR"),
        ({"NOMAD_ADDR": "http://nomad:4646/v1"}, "NOMAD_ADDR"),
        ({"NOMAD_NAMESPACE": "*"}, "NOMAD_NAMESPACE"),
        ({"NOMAD_NAMESPACE": "has space"}, "NOMAD_NAMESPACE"),
        ({"NOMAD_REGION": "a/b"}, "NOMAD_REGION"),
        ({"NOMAD_TOKEN": "two words"}, "NOMAD_TOKEN"),
        ({"NOMAD_SKIP_VERIFY": "true"}, "NOMAD_SKIP_VERIFY"),
        ({"NOMAD_SKIP_VERIFY": "maybe"}, "NOMAD_SKIP_VERIFY"),
        ({"NOMAD_CLIENT_CERT": "/etc/hosts"}, "NOMAD_CLIENT_KEY"),
        ({"NOMAD_CACERT": "/nonexistent/ca.pem"}, "NOMAD_CACERT"),
        ({"NOMAD_CAPATH": "/nonexistent"}, "NOMAD_CAPATH"),
    ],
)
def test_from_environ_bad_value_raises_naming_the_variable(
    environ: dict[str, str], names: str
) -> None:
    with pytest.raises(ValueError, match=names):
        NomadSettings.from_environ(environ)


def test_skip_verify_is_refused_because_tls_is_always_verified() -> None:
    with pytest.raises(ValueError, match="always verifies"):
        NomadSettings.from_environ({"NOMAD_SKIP_VERIFY": "1"})
