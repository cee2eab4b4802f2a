"""`/repos/…`: registrations, roles, maintainers, versions and details (COMPAT 3.1-3.6)."""

from __future__ import annotations

import logging
from typing import Any

from resolvers import maintainers, notify, releases, repos
from resolvers.core.errors import DomainError, InvalidInput, NotFound
from resolvers.lain import catalog
from rest_compat import errors, render
from rest_compat.envelope import DOCS_URL, Abort, Reply
from rest_compat.routing import Call

__all__ = [
    "add_maintainer",
    "delete_maintainer",
    "get_details",
    "get_maintainer",
    "get_repo",
    "image_push",
    "list_maintainers",
    "list_repos",
    "list_versions",
    "maintainer_gate",
    "publish_version",
    "register_repo",
    "role_of_caller",
    "role_of_user",
]

log = logging.getLogger(__name__)


async def list_repos(call: Call) -> Reply:
    found = await catalog.all_repos(call.ctx)
    return Reply(200, "repos", url="/v1/repos/", obj=[render.repo_object(r.name) for r in found])


async def register_repo(call: Call) -> Reply:
    body = call.json()
    app = body.get("appname") if isinstance(body, dict) else None
    if not isinstance(app, str):
        raise Abort(Reply(400, "repo", "invalid request: should be json body with appname(string)"))
    call.names["app"] = app
    try:
        await repos.register_repo(call.ctx, name=app)
    except DomainError as exc:
        return errors.register_error(exc, app)
    msg = (
        f"create group for app {app} successfully"
        if call.services.auth_enabled
        else "don't need sso auth, no need for create group"
    )
    return Reply(201, "repos", msg, f"/v1/repos/{app}/", render.repo_object(app))


async def get_repo(call: Call) -> Reply:
    app = call.names["app"]
    await repos.get_repo(call.ctx, name=app)
    return Reply(200, "repo", url=f"/v1/repos/{app}/", obj=render.repo_object(app))


async def role_of_caller(call: Call) -> Reply:
    app = call.names["app"]
    role = await maintainers.viewer_role(call.ctx, app=app)
    if role is None:
        raise Abort(_not_a_maintainer(app, call.principal.name))
    return Reply(200, "role", url=f"/v1/repos/{app}/roles/", obj=render.role_object(role))


async def role_of_user(call: Call) -> Reply:
    app, username = call.names["app"], call.names["username"]
    role = await maintainers.user_role(call.ctx, app=app, username=username)
    if role is None:
        raise Abort(_not_a_maintainer(app, username))
    url = f"/v1/repos/{app}/roles/{username}/"
    return Reply(200, "role", url=url, obj=render.role_object(role))


def _not_a_maintainer(app: str, username: str) -> Reply:
    msg = f"user {username} does not exist in the maintainer list of app {app}\n"
    return Reply(404, "role", msg, f"/v1/repos/{app}/maintainers/")


def maintainer_gate(call: Call) -> None:
    """Before anything else, even the method: no maintainers without auth (COMPAT 9.27)."""
    if not call.services.auth_enabled:
        msg = "maintainer service not provided, try to open console auth first"
        raise Abort(Reply(403, "maintainer", msg))


async def list_maintainers(call: Call) -> Reply:
    app = call.names["app"]
    found = await maintainers.list_maintainers(call.ctx, app=app)
    objects = [render.maintainer_object(m) for m in found]
    return Reply(200, "maintainers", url=f"/v1/repos/{app}/maintainers/", obj=objects)


async def add_maintainer(call: Call) -> Reply:
    app = call.names["app"]
    body = call.json()
    username = body.get("username") if isinstance(body, dict) else None
    role = body.get("role") if isinstance(body, dict) else None
    if not isinstance(username, str) or not isinstance(role, str):
        msg = "invalid request: should be json body with username(string) and role(string)"
        raise Abort(Reply(400, "maintainers", msg))
    try:
        added = await maintainers.add_maintainer(call.ctx, app=app, username=username, role=role)
    except DomainError as exc:
        return errors.maintainer_error(exc, app, username, adding=True)
    url = f"/v1/repos/{app}/maintainers/"
    return Reply(200, "maintainer", url=url, obj=render.maintainer_object(added))


async def get_maintainer(call: Call) -> Reply:
    app, username = call.names["app"], call.names["username"]
    try:
        found = await maintainers.get_maintainer(call.ctx, app=app, username=username)
    except NotFound as exc:
        if exc.field != "username":
            raise
        msg = f"user {username} does not exist in the app {app}\n"
        return Reply(404, "maintainer", msg, f"/v1/repos/{app}/maintainers/")
    url = f"/v1/repos/{app}/maintainers/{username}/"
    return Reply(200, "maintainer", url=url, obj=render.maintainer_object(found))


async def delete_maintainer(call: Call) -> Reply:
    app, username = call.names["app"], call.names["username"]
    try:
        await maintainers.remove_maintainer(call.ctx, app=app, username=username)
    except DomainError as exc:
        return errors.maintainer_error(exc, app, username, adding=False)
    msg = "delete group member successfully"
    return Reply(204, "maintainer", msg, f"/v1/repos/{app}/maintainers/")


async def list_versions(call: Call) -> Reply:
    app = call.names["app"]
    tags = await catalog.version_tags(call.ctx, app=app)
    if not tags:
        raise Abort(_no_images(call, app, "version"))
    url = f"/v1/repos/{app}/versions/"
    return Reply(200, "version", url=url, obj=render.version_object(app, tags))


def _no_images(call: Call, app: str, key: str) -> Reply:
    tags_url = errors.tags_list_url(call.services.registry, app)
    msg = f"no avaible images for app {app}:\nno images here: {tags_url}\nplease push images first."
    return Reply(404, key, msg, f"/v1/repos/{app}/versions/")


async def publish_version(call: Call) -> Reply:
    """Our extension: there is no registry to push to, so releases are published here."""
    app = call.names["app"]
    body = call.json()
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    version, lain_yaml = fields.get("meta_version"), fields.get("lain_yaml")
    image = fields.get("image")
    if (
        not isinstance(version, str)
        or not isinstance(lain_yaml, str)
        or not isinstance(image, str | None)
    ):
        msg = (
            "invalid request: should be json body with meta_version(string), "
            "lain_yaml(string) and optionally image(string)"
        )
        raise Abort(Reply(400, "version", msg))
    try:
        await releases.publish_release(
            call.ctx, app=app, meta_version=version, lain_yaml=lain_yaml, image=image
        )
    except DomainError as exc:
        return errors.publish_error(exc, app, version)
    tags = await catalog.version_tags(call.ctx, app=app)
    msg = f"meta_version {version} of app {app} has been published"
    url = f"/v1/repos/{app}/versions/"
    return Reply(201, "version", msg, url, render.version_object(app, tags))


async def get_details(call: Call) -> Reply:
    app = call.names["app"]
    # LAIN read the details from the registry too, and answered its 404 the same way.
    if not await catalog.version_tags(call.ctx, app=app):
        raise Abort(_no_images(call, app, "detail"))
    details = await catalog.repo_details(call.ctx, app=app)
    url = f"/v1/repos/{app}/details/"
    return Reply(200, "detail", url=url, obj=render.detail_object(details))


async def image_push(call: Call) -> Reply:
    """Tell the image-push subscribers about the newest release (COMPAT 3.7). Without GitLab
    the commits come only from the body: `{"authors": [...], "commits": [...]}`."""
    app = call.names["app"]
    body = call.json()
    if not isinstance(body, dict):
        if call.body:
            log.info("push of %s: ignoring a body that is not a JSON object", app)
        body = {}
    url = f"/v1/repos/{app}/push/"
    try:
        await notify.image_pushed(
            call.ctx, app=app, authors=body.get("authors"), commits=body.get("commits")
        )
    except NotFound as exc:
        if exc.field != "metaVersion":
            raise
        return _no_images(call, app, "image_push")
    except InvalidInput as exc:
        return Reply(400, "image_push", exc.message, url if exc.field == "giturl" else DOCS_URL)
    return Reply(200, "image_push", "ok", url)
