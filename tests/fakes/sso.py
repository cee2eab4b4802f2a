"""A fake of LAIN SSO's OAuth2 token endpoint, `/oauth2/token` (laincloud/sso).

What it copies, and from where:
- GET and POST are the same handler (ssolib/token.go: `Get` calls `Post`; ssolib/server.go
  sets osin's `AllowGetAccessRequest`).
- The request is osin's access request: `grant_type=authorization_code`, `client_id`,
  `client_secret`, `code`, `redirect_uri` (RangelReale/osin access.go). The redirect URI
  must be the client's; a code is used once (osin removes the authorize data).
- Success is osin's output: `access_token`, `token_type`, `expires_in`, `refresh_token`,
  `scope`. A refusal is osin's error output, `error` and `error_description`, with osin's
  default `ErrorStatusCode`, 200 (osin config.go, which sso does not change); sso returns
  `resp.StatusCode` as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["FakeSso"]


@dataclass
class FakeSso:
    client_id: str
    client_secret: str
    redirect_uri: str
    codes: dict[str, str] = field(default_factory=dict)  # code -> the token it gives
    expires_in: int = 3600
    requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/oauth2/token", self._token, methods=["GET", "POST"])])

    async def _token(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        self.requests.append(params)
        if params.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type", "The authorization grant type is not supported")
        if (params.get("client_id"), params.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _error("unauthorized_client", "The client is not authorized")
        token = self.codes.pop(params.get("code", ""), None)
        if token is None or params.get("redirect_uri") != self.redirect_uri:
            return _error("invalid_grant", "The provided authorization grant is invalid")
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "refresh_token": f"refresh-{token}",
                "scope": "",
            }
        )


def _error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=200)
