"""The client's one error, and the exit status of each class of error (see the README)."""

from __future__ import annotations

__all__ = ["EXIT_STATUS", "ClientError", "exit_status"]

# One status per class, so scripts can tell "fix your input" from "try again later".
EXIT_STATUS: dict[str, int] = {
    "INTERNAL": 1,  # the console failed, or answered something the client cannot read
    "INVALID": 2,  # bad input (argparse's usage errors exit 2 as well)
    "CURSOR_EXPIRED": 2,  # events --after: pruned; the message names the oldest cursor
    "NOT_FOUND": 3,
    "CONFLICT": 4,  # deployed already, busy, nothing to roll back to
    "UNAUTHENTICATED": 5,
    "FORBIDDEN": 5,
    "BACKEND_UNAVAILABLE": 6,  # the console's scheduler is down: try again later
    "UNREACHABLE": 6,  # the console itself cannot be reached
    "ROLLOUT_STOPPED": 7,  # deploy --wait: the rollout stopped or the proc fails
    "TIMEOUT": 7,  # deploy --wait: not done within --timeout
}


class ClientError(Exception):
    """Printed as one line, `error: CODE: message`, and exits with the code's status."""

    def __init__(
        self, code: str, message: str, extensions: dict[str, object] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extensions = extensions or {}  # the GraphQL error's, e.g. oldestCursor


def exit_status(code: str) -> int:
    return EXIT_STATUS.get(code, 1)
