"""How to reach Nomad, read from the environment the way the `nomad` CLI reads it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["NomadSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
# Nomad's own rule for namespace names (nomad/structs/structs.go, validNamespaceName).
_NAMESPACE = re.compile(r"^[a-zA-Z0-9-]{1,128}$")
_REGION = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")
_DEFAULT_ADDRESS = "http://127.0.0.1:4646"
_DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, slots=True)
class NomadSettings:
    """Connection settings for one Nomad region and namespace.

    TLS is always verified: against `ca_cert` / `ca_path` when given, else against the
    system's trust store. `token` is kept out of `repr` so it never reaches a log line.
    """

    address: str = _DEFAULT_ADDRESS
    token: str = field(default="", repr=False)
    namespace: str = _DEFAULT_NAMESPACE
    region: str = ""  # empty: the region of the agent we talk to
    ca_cert: str = ""
    ca_path: str = ""
    client_cert: str = ""
    client_key: str = ""
    tls_server_name: str = ""  # the name to expect on Nomad's certificate (and send as SNI)
    http_auth: str = field(default="", repr=False)  # "user[:password]" for a proxy in front

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """NOMAD_HTTP_AUTH as (user, password), as the nomad CLI splits it."""
        if not self.http_auth:
            return None
        user, _, password = self.http_auth.partition(":")
        return (user, password)

    @property
    def verify(self) -> bool | str:
        """What `requests` takes as `verify`: a CA bundle or directory, or True."""
        return self.ca_cert or self.ca_path or True

    @property
    def cert(self) -> tuple[str, str] | None:
        """The client certificate and key for mutual TLS, if configured."""
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> NomadSettings:
        """Read `NOMAD_ADDR`, `NOMAD_TOKEN`, `NOMAD_NAMESPACE`, `NOMAD_REGION`,
        `NOMAD_CACERT`, `NOMAD_CAPATH`, `NOMAD_CLIENT_CERT`, `NOMAD_CLIENT_KEY`,
        `NOMAD_TLS_SERVER_NAME` and `NOMAD_HTTP_AUTH`.

        Unset or empty variables take the CLI's defaults. Raises ValueError naming the
        variable when a value cannot be used, including `NOMAD_SKIP_VERIFY=true`, because
        lain-console never talks to Nomad without checking its certificate.
        """

        def get(name: str) -> str:
            return environ.get(name, "").strip()

        skip_verify = get("NOMAD_SKIP_VERIFY").lower()
        if skip_verify in _TRUE:
            raise ValueError(
                "NOMAD_SKIP_VERIFY is set, but lain-console always verifies Nomad's TLS "
                "certificate; set NOMAD_CACERT to the CA that signed it instead"
            )
        if skip_verify not in _FALSE:
            raise ValueError(f"NOMAD_SKIP_VERIFY must be true or false, got {skip_verify!r}")

        settings = cls(
            address=_address(get("NOMAD_ADDR") or _DEFAULT_ADDRESS),
            token=get("NOMAD_TOKEN"),
            namespace=get("NOMAD_NAMESPACE") or _DEFAULT_NAMESPACE,
            region=get("NOMAD_REGION"),
            ca_cert=get("NOMAD_CACERT"),
            ca_path=get("NOMAD_CAPATH"),
            client_cert=get("NOMAD_CLIENT_CERT"),
            client_key=get("NOMAD_CLIENT_KEY"),
            tls_server_name=get("NOMAD_TLS_SERVER_NAME"),
            http_auth=get("NOMAD_HTTP_AUTH"),
        )
        settings._check()
        return settings

    def _check(self) -> None:
        if any(c.isspace() for c in self.token):
            raise ValueError("NOMAD_TOKEN must not contain whitespace")
        if not _NAMESPACE.match(self.namespace):
            raise ValueError(
                "NOMAD_NAMESPACE must be one namespace name (letters, digits and dashes, at "
                f"most 128), got {self.namespace!r}"
            )
        if self.region and not _REGION.match(self.region):
            raise ValueError(f"NOMAD_REGION is not a region name: {self.region!r}")
        if self.http_auth and not self.http_auth.partition(":")[0]:
            raise ValueError("NOMAD_HTTP_AUTH must be user or user:password, with a user")
        if any(c.isspace() or c == "/" for c in self.tls_server_name):
            raise ValueError(
                f"NOMAD_TLS_SERVER_NAME must be a host name, got {self.tls_server_name!r}"
            )
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY must be set together")
        for name, path, want_dir in (
            ("NOMAD_CACERT", self.ca_cert, False),
            ("NOMAD_CAPATH", self.ca_path, True),
            ("NOMAD_CLIENT_CERT", self.client_cert, False),
            ("NOMAD_CLIENT_KEY", self.client_key, False),
        ):
            if not path:
                continue
            exists = os.path.isdir(path) if want_dir else os.path.isfile(path)
            if not exists:
                kind = "directory" if want_dir else "file"
                raise ValueError(f"{name}={path!r}: no such {kind}")


def _address(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"NOMAD_ADDR must be an http:// or https:// URL such as "
            f"http://127.0.0.1:4646, got {raw!r}"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"NOMAD_ADDR has an invalid port: {raw!r}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"NOMAD_ADDR must not have a path or query, got {raw!r}")
    return f"{parts.scheme}://{parts.netloc}"
