"""The live status page at `/ui/`: static files from `server/ui/`, with headers that let it
run only its own code."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["UI_CSP", "ui_mount"]

UI_DIR = Path(__file__).with_name("ui")

# Its own scripts and styles only: data can never run as code even if some slipped into the
# DOM as markup. `connect-src 'self'` covers same-origin websockets (CSP level 3).
UI_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = [
    (b"content-security-policy", UI_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # Revalidate: after an upgrade the page must not mix old and new scripts.
    (b"cache-control", b"no-cache"),
]


class _PageHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def ui_mount() -> Mount:
    """`/ui/` (`/ui` redirects there); index.html for the directory."""
    return Mount("/ui", app=_PageHeaders(StaticFiles(directory=UI_DIR, html=True)), name="ui")
