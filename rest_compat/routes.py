"""The route table of `/api/v1` and `/v1`: LAIN's paths, 405 keys, permission levels, fatal
messages, and which routes are refused while the backend cannot take work (COMPAT 1.7, 3)."""

from __future__ import annotations

from starlette.responses import Response

from rest_compat import apps, logs, misc, notify, procs, repos
from rest_compat.auth import Level
from rest_compat.routing import Call, Endpoint, Fatal, Method

__all__ = ["ENDPOINTS"]

_MAINTAIN = Level.MAINTAIN


async def _swagger(call: Call) -> Response:
    return await misc.swagger(call, ENDPOINTS)


async def _docs(call: Call) -> Response:
    return await misc.docs_page(call, ENDPOINTS)


_REPOS = Endpoint(
    "repos/",
    "repos",
    {
        "GET": Method(
            repos.list_repos,
            Level.READ,
            Fatal("repos", "getting repos apps"),
            summary="List registered apps.",
        ),
        "POST": Method(
            repos.register_repo,
            Level.READ,
            Fatal("repos", "reposing app {app}"),
            summary="Register an app.",
            body='{"appname": "hello"}',
            statuses=(201, 400, 409),
        ),
    },
)

_REPO = Endpoint(
    "repos/{app}/",
    "repo",
    {
        "GET": Method(
            repos.get_repo,
            _MAINTAIN,
            Fatal("repo", "getting repo {app}"),
            summary="A registered app.",
            statuses=(200, 404),
        )
    },
)

_ROLES = Endpoint(
    "repos/{app}/roles/",
    "role",
    {
        "GET": Method(
            repos.role_of_caller,
            _MAINTAIN,
            Fatal("role", "getting roles for {app}"),
            summary="The caller's role on the app (admin with auth off).",
            statuses=(200, 404),
        )
    },
)

_ROLE = Endpoint(
    "repos/{app}/roles/{username}/",
    "role",
    {
        "GET": Method(
            repos.role_of_user,
            Level.NONE,
            Fatal("role", "getting roles for {app}"),
            summary="A user's role on the app.",
            statuses=(200, 404),
        )
    },
)

_MAINTAINERS = Endpoint(
    "repos/{app}/maintainers/",
    "maintainer",
    {
        "GET": Method(
            repos.list_maintainers,
            _MAINTAIN,
            Fatal("maintainers", "getting maintainer for {app}"),
            summary="The app's maintainers (403 with auth off).",
            statuses=(200, 403),
        ),
        "POST": Method(
            repos.add_maintainer,
            _MAINTAIN,
            Fatal("maintainer", "adding maintainer for {app}"),
            summary="Add a maintainer or change their role (403 with auth off).",
            body='{"username": "bob", "role": "admin or normal"}',
            statuses=(200, 400, 403, 500),
        ),
    },
    gate=repos.maintainer_gate,
)

_MAINTAINER = Endpoint(
    "repos/{app}/maintainers/{username}/",
    "maintainer",
    {
        "GET": Method(
            repos.get_maintainer,
            _MAINTAIN,
            Fatal("maintainer", "getting maintainer for {app}"),
            summary="One maintainer (403 with auth off).",
            statuses=(200, 403, 404),
        ),
        "DELETE": Method(
            repos.delete_maintainer,
            _MAINTAIN,
            Fatal("maintainer", "deleting maintainer for {app}"),
            summary="Remove a maintainer (403 with auth off).",
            statuses=(204, 403, 500),
        ),
    },
    gate=repos.maintainer_gate,
)

_VERSIONS = Endpoint(
    "repos/{app}/versions/",
    "version",
    {
        "GET": Method(
            repos.list_versions,
            _MAINTAIN,
            Fatal("version", "getting version of app {app}", "/v1/repos/{app}/"),
            summary="The app's release versions, newest first.",
            statuses=(200, 404),
        ),
        "POST": Method(
            repos.publish_version,
            _MAINTAIN,
            Fatal("version", "publishing version of app {app}", "/v1/repos/{app}/"),
            summary="Publish a release (our extension: there is no registry).",
            body='{"meta_version": "<ts>-<sha>", "lain_yaml": "<text>", "image": "optional"}',
            statuses=(201, 400, 409),
        ),
    },
)

_DETAILS = Endpoint(
    "repos/{app}/details/",
    "details",
    {
        "GET": Method(
            repos.get_details,
            _MAINTAIN,
            Fatal("detail", "getting version of app {app}", "/v1/repos/{app}/"),
            summary="The bound giturl and the deployed meta_version.",
            statuses=(200, 404),
        )
    },
)

_PUSH = Endpoint(
    "repos/{app}/push/",
    "image_push",
    {
        "POST": Method(
            repos.image_push,
            _MAINTAIN,
            Fatal("image_push", "getting version of app {app}", "/v1/repos/{app}/"),
            summary="Tell the imagepush subscribers about the newest release; without GitLab "
            "the commits come from the body.",
            body='{"authors": ["alice@example.com"], "commits": [{"id": "6f8a0c1", '
            '"message": "alice [fix]"}]}',
            statuses=(200, 400, 404),
        )
    },
)

_APPS = Endpoint(
    "apps/",
    "apps",
    {
        "GET": Method(
            apps.list_apps,
            Level.READ,
            Fatal("apps", "getting apps"),
            summary="Deployed apps with their procs; ?apptype=app|service|resource|"
            "resource-instance.",
        ),
        "POST": Method(
            apps.deploy_app,
            _MAINTAIN,
            Fatal("app", "creating app {app}"),
            mutating=True,
            prepare=apps.prepare_deploy,
            summary="Deploy a registered app's newest release.",
            body='{"appname": "hello"}',
            statuses=(202, 400, 404, 406, 409, 503),
        ),
    },
)

_APP = Endpoint(
    "apps/{app}/",
    "app",
    {
        "GET": Method(
            apps.get_app,
            _MAINTAIN,
            Fatal("app", "get app {app}", "/v1/apps/{app}/"),
            summary="A deployed app with its procs.",
            statuses=(200, 404),
        ),
        "PUT": Method(
            apps.update_app,
            _MAINTAIN,
            Fatal("app", "update app {app}", "/v1/apps/{app}/"),
            mutating=True,
            summary="Update to a release (the newest without meta_version).",
            body='{"meta_version": "<ts>-<sha>"}',
            statuses=(202, 400, 404, 406, 503),
        ),
        "DELETE": Method(
            apps.undeploy_app,
            _MAINTAIN,
            Fatal("app", "delete app {app}", "/v1/apps/{app}/"),
            mutating=True,
            summary="Undeploy; the registration stays. Resources are refused.",
            statuses=(202, 403, 404, 500, 503),
        ),
    },
)

_PROCS = Endpoint(
    "apps/{app}/procs/",
    "procs",
    {
        "GET": Method(
            procs.list_procs,
            _MAINTAIN,
            Fatal("procs", "get app {app} procs", "/v1/apps/{app}/"),
            summary="The app's procs with their running state.",
            statuses=(200, 404),
        ),
        "POST": Method(
            procs.deploy_proc,
            _MAINTAIN,
            Fatal("proc", "create app {app} proc {proc}", "/v1/apps/{app}/"),
            mutating=True,
            summary="Deploy a proc that is not deployed.",
            body='{"procname": "web"}',
            statuses=(201, 400, 404, 409, 500, 503),
        ),
    },
)

_PROC = Endpoint(
    "apps/{app}/procs/{proc}/",
    "proc",
    {
        "GET": Method(
            procs.get_proc,
            _MAINTAIN,
            Fatal("proc", "get app {app} proc {proc}", "/v1/apps/{app}/procs/"),
            summary="A proc with its running state.",
            statuses=(200, 404),
        ),
        "PATCH": Method(
            procs.patch_proc,
            _MAINTAIN,
            Fatal("proc", "{operation} app {app} proc {proc}", "/v1/apps/{app}/procs/{proc}/"),
            mutating=True,
            summary="Scale (num_instances alone), resize (cpu, memory), or start/stop/restart "
            "(operation, instance).",
            body='{"num_instances": 2} or {"cpu": 1, "memory": "64M"} or '
            '{"operation": "restart", "instance": 1}',
            statuses=(202, 400, 404, 500, 503),
        ),
        "DELETE": Method(
            procs.undeploy_proc,
            _MAINTAIN,
            Fatal("proc", "delete app {app} proc {proc}", "/v1/apps/{app}/procs/{proc}/"),
            mutating=True,
            summary="Undeploy a proc; it comes back with the next update.",
            statuses=(202, 400, 404, 500, 503),
        ),
    },
)

_LOGS = Endpoint(
    "apps/{app}/procs/{proc}/logs/",
    "logs",
    {
        "GET": Method(
            logs.proc_logs,
            _MAINTAIN,
            Fatal("logs", "get app {app} proc {proc} logs", "/v1/apps/{app}/procs/{proc}/"),
            summary="An extension: the proc's output as text/plain, one line each, "
            "'<time> <proc>.<instance> <stream> <text>'. ?instance=<n> one instance (all by "
            "default, merged in time order); ?tail=<0..10000> the newest lines (100); "
            "?follow=1 keeps the response open and sends each new line as it is written "
            "(chunked; `curl -N`), through restarts and rollouts; a reader too slow gets "
            "'[N lines dropped …]'.",
            statuses=(200, 400, 401, 403, 404),
            query=(
                ("instance", "integer", "one instance, numbered from 1 (all by default)"),
                ("tail", "integer", "the newest lines to send first, 0 to 10000 (100)"),
                ("follow", "integer", "1: keep the response open and send new lines"),
            ),
            cached=False,  # instance output: no state version follows it
        )
    },
)

_HISTORIES = Endpoint(
    "apps/{app}/procs/{proc}/instance/{instance}/histories/",
    "proc",
    {
        "GET": Method(
            procs.instance_histories,
            _MAINTAIN,
            Fatal("proc", "get app {app} proc {proc}", "/v1/apps/{app}/procs/"),
            summary="The recent state changes of one instance, newest first.",
            statuses=(200, 400, 404),
        )
    },
)

_INSTANCES = Endpoint(
    "resources/{app}/instances/",
    "resource",
    {
        "GET": Method(
            apps.list_resource_instances,
            _MAINTAIN,
            Fatal("instances", "get resource {app} instances", "/v1/resources/{app}/instances/"),
            summary="The instances resource.<resource>.<client> of a resource.",
            statuses=(200, 404),
        )
    },
)

_AUTH_STATUS = Endpoint(
    "authorize/status/",
    "auth",
    {
        "GET": Method(
            misc.auth_status,
            Level.NONE,
            Fatal("auth", "getting auth status"),
            summary="Whether auth is on.",
        )
    },
)

_OPLOGS = Endpoint(
    "oplogs/{app}/",
    "oplog",
    {},
    any_method=Method(
        misc.oplogs,
        Level.NONE,
        Fatal("oplog", "getting oplogs of app {app}"),
        summary="The app's last 50 operations, as a JSON string.",
    ),
)

_AUTHORIZE = Endpoint(
    "authorize/",
    "auth",
    {},
    any_method=Method(
        misc.authorize,
        Level.NONE,
        Fatal("auth", "authorizing"),
        summary="LAIN SSO's OAuth2 redirect: ?code= is exchanged for a token, then 302 to the "
        "UI with it.",
        statuses=(302, 400, 401),
        cached=False,  # each call exchanges a code
    ),
)

_STREAM_PORTS = Endpoint(
    "usedstreamrouterports",
    "streamrouter",
    {
        "GET": Method(
            misc.used_stream_ports,
            Level.NONE,
            Fatal("streamrouter", "getting used streamrouter ports"),
            summary="The stream-router ports (lain.yaml ports) deployed procs claim.",
        )
    },
    # LAIN's pattern had neither a trailing slash nor a `$` (COMPAT 1.1).
    prefix=True,
)

_NOTIFY_FATAL = Fatal("notify", "handling notify {notify_type}", "/v1/notify/{notify_type}/")

_NOTIFY = Endpoint(
    "notify/{notify_type}/",
    "api_notify",
    {
        "GET": Method(
            notify.list_subscribers,
            Level.NONE,
            _NOTIFY_FATAL,
            summary="The URLs subscribed to a notification type (only imagepush).",
            statuses=(200, 400),
        ),
        "POST": Method(
            notify.add_subscriber,
            Level.NONE,
            _NOTIFY_FATAL,
            summary="Subscribe a URL (duplicates are appended).",
            body='{"notify_url": "http://lxcmond.lain:3001/api/v1/imagepush"}',
            statuses=(200, 400),
        ),
        "DELETE": Method(
            notify.remove_subscriber,
            Level.NONE,
            _NOTIFY_FATAL,
            summary="Unsubscribe a URL (its oldest subscription).",
            body='{"notify_url": "http://lxcmond.lain:3001/api/v1/imagepush"}',
            statuses=(200, 400),
        ),
    },
    gate=notify.body_gate,
)

_DOCS = Endpoint(
    "docs/",
    "docs",
    {"GET": Method(_docs, Level.NONE, Fatal("docs", "showing docs"), summary="This list.")},
)

_SWAGGER = Endpoint(
    "swagger/",
    "swagger",
    {
        "GET": Method(
            _swagger,
            Level.NONE,
            Fatal("swagger", "showing swagger"),
            summary="This document, as Swagger 2.0 JSON.",
        )
    },
)

ENDPOINTS: tuple[Endpoint, ...] = (
    _REPOS,
    _REPO,
    _ROLES,
    _ROLE,
    _MAINTAINERS,
    _MAINTAINER,
    _VERSIONS,
    _DETAILS,
    _PUSH,
    _APPS,
    _APP,
    _PROCS,
    _PROC,
    _LOGS,
    _HISTORIES,
    _INSTANCES,
    _AUTH_STATUS,
    _AUTHORIZE,
    _STREAM_PORTS,
    _NOTIFY,
    _OPLOGS,
    _DOCS,
    _SWAGGER,
)
