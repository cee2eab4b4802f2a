"""Domain errors as LAIN answered them: status, object key, message and url (COMPAT 1.6, 3).

This is the one place that turns a `DomainError` into a REST reply. The shared outcomes of
LAIN's decorators come first; then one function per operation, each a short table of what
that operation's errors meant in LAIN. Message texts are LAIN's, typos and newlines included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from resolvers.core.bindings import USE_RESOURCES_FIELD
from resolvers.core.errors import (
    BackendUnavailable,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from resolvers.lain.catalog import image_repository
from rest_compat.envelope import Reply

__all__ = [
    "deploy_error",
    "fatal",
    "maintainer_error",
    "method_not_allowed",
    "no_such_proc",
    "not_deployed",
    "proc_error",
    "publish_error",
    "register_error",
    "relay",
    "relay_error",
    "shared_reply",
    "tags_list_url",
    "unknown_path",
    "update_error",
]

# What deployd would have answered, for our errors relayed in its format (COMPAT 1.6).
_DEPLOYD_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (Conflict, 423),  # deployd's "Another operation … is progressing"
    (InvalidInput, 400),
    (NotFound, 404),
    (Forbidden, 403),
    (Unauthenticated, 401),
    (BackendUnavailable, 500),
)


def shared_reply(exc: DomainError, names: Mapping[str, str]) -> Reply | None:
    """The outcomes of LAIN's permission decorator and deployd check; None for others."""
    app = names.get("app", "")
    if isinstance(exc, Unauthenticated):
        return Reply(401, "app", "unauthorized : don't have the access to the operation")
    if isinstance(exc, NotFound):
        return Reply(
            404,
            "app",
            f"app with appname {app} not exist, has not been reposited yet",
            "/v1/repos/",
        )
    if isinstance(exc, Forbidden):
        return Reply(403, "maintainer", exc.message)
    if isinstance(exc, BackendUnavailable):
        return Reply(
            503, "app", "deployd is now in maintain state, please wait for a while", "/v1/apps/"
        )
    return None


def method_not_allowed(key: str, method: str) -> Reply:
    return Reply(405, key, f"invalid http method {method}")


def unknown_path(path: str) -> Reply:
    # Django's own words for a missing page, in our envelope instead of an HTML page.
    return Reply(404, "app", f"The requested URL {path} was not found on this server.")


def fatal(key: str, phrase: str, url: str, exc: BaseException) -> Reply:
    detail = f"internal error ({type(exc).__name__}); the log has it under this X-Request-ID"
    return Reply(
        500, key, f"fatal error when {phrase}:\n{detail}\nplease contact with admin of lain\n", url
    )


def not_deployed(app: str, key: str) -> Reply:
    return Reply(404, key, f"app with appname {app} has not been deployd\n", "/v1/apps/")


def no_such_proc(app: str, proc: str, key: str = "proc", status: int = 404) -> Reply:
    return Reply(status, key, f"no such proc {proc} in app {app}", f"/v1/apps/{app}/procs/")


def relay(status: int, message: str) -> str:
    """A deployd answer relayed into `msg`: four-space indents, no trailing newline."""
    return f"    status_code: {status}\n    message: {message}"


def relay_error(exc: DomainError) -> str:
    status = next((code for kind, code in _DEPLOYD_STATUS if isinstance(exc, kind)), 500)
    return relay(status, exc.message)


def register_error(exc: DomainError, app: str) -> Reply:
    """POST /repos/ (COMPAT 3.1)."""
    if isinstance(exc, Conflict):
        msg = f"app with appname {app} has already been reposited\n"
        return Reply(409, "repos", msg, f"/v1/repos/{app}/")
    if isinstance(exc, InvalidInput):
        # LAIN took any name; ours must be usable as a job id and a directory name.
        return Reply(400, "repo", f"invalid request: {exc.message}")
    return _unexpected(exc, "repos", f"reposing app {app}")


def publish_error(exc: DomainError, app: str, version: str) -> Reply:
    """POST /repos/<a>/versions/, our extension: the release store replaces the registry."""
    url = f"/v1/repos/{app}/versions/"
    if isinstance(exc, Conflict):
        return Reply(409, "version", f"meta_version {version} of app {app} already exists\n", url)
    if isinstance(exc, InvalidInput):
        return Reply(400, "version", exc.message, url)
    return _unexpected(exc, "version", f"publishing version of app {app}")


def tags_list_url(registry: str, app: str) -> str:
    """Where LAIN asked the registry for an app's images; its messages quote it."""
    return f"http://{registry}/v2/{image_repository(app)}/tags/list"


def deploy_error(exc: DomainError, app: str, registry: str) -> Reply:
    """POST /apps/ once the app is known not to be deployed (COMPAT 3.8)."""
    url = f"/v1/apps/{app}/"
    if isinstance(exc, NotFound) and exc.field == "metaVersion":
        # No release at all: what LAIN answered when the registry had no images for the app.
        msg = (
            f"error in getting images: no images here: {tags_list_url(registry, app)}\n"
            "please check your App images then try to update your App\n"
        )
        return Reply(500, "app", msg, url)
    msg = (
        f"request of deploy app {app} is not acceptable with error:\n"
        f"Deploy app {app} results: {_deploy_detail(exc)}"
    )
    return Reply(406, "app", msg, url)


def update_error(exc: DomainError, app: str, version: str | None) -> Reply:
    """PUT /apps/<a>/ (COMPAT 3.9); a 400 for an unknown version gets the app attached."""
    url = f"/v1/apps/{app}/"
    if isinstance(exc, NotFound) and exc.field == "metaVersion":
        if version is not None:
            msg = f"no such meta_version {version} for app {app}\nplease check your images\n"
            return Reply(400, "app", msg, url)
        msg = (
            "can not get meta_version/meta\n"
            "please check your App images then try to update your App\n"
        )
        return Reply(400, "app", msg, url)
    if isinstance(exc, NotFound):
        return not_deployed(app, "app")
    msg = (
        f"request of update app {app} is not acceptable with error:\n"
        f"Updating app {app} results: {_deploy_detail(exc)}"
    )
    return Reply(406, "app", msg, url)


def _deploy_detail(exc: DomainError) -> str:
    # A used resource that is missing or not deployed was LAIN's "not reachable".
    field = exc.field or ""
    if isinstance(exc, InvalidInput) and field.startswith(USE_RESOURCES_FIELD):
        return f"Error: Resource {field.removeprefix(USE_RESOURCES_FIELD)} DoesNotExist"
    return exc.message


def proc_error(exc: DomainError, app: str, proc: str, *, key: str = "proc") -> Reply | None:
    """The 404s every proc route shares; None for errors the route answers itself."""
    if isinstance(exc, NotFound) and exc.field == "proc":
        return no_such_proc(app, proc, key)
    if isinstance(exc, NotFound):
        return not_deployed(app, key)
    return None


def maintainer_error(exc: DomainError, app: str, username: str, *, adding: bool) -> Reply:
    """Maintainer changes that SSO refused surfaced as 500s with SSO's JSON string (3.4)."""
    if isinstance(exc, InvalidInput) and exc.field == "role":
        text = "unknown role"
    elif isinstance(exc, Forbidden):
        text = "Not group admin"
    elif isinstance(exc, NotFound) and exc.field == "username":
        text = "no such member"
    else:
        text = exc.message
    sso = json.dumps(text)
    if adding:
        detail = f"fail add group member {username} to app {app} : {sso}"
        return Reply(500, "maintainer", f"error adding maintainer of app {app} : \n{detail}\n")
    detail = f"fail delete group member {username} from app {app} : {sso}"
    return Reply(500, "maintainer", f"error deleting maintainer of app {app} : \n{detail}\n")


def _unexpected(exc: DomainError, key: str, phrase: str) -> Reply:
    return Reply(
        500, key, f"fatal error when {phrase}:\n{exc.message}\nplease contact with admin of lain\n"
    )
