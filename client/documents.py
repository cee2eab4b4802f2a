"""The GraphQL operations the client sends (schema/schema.graphql is the contract)."""

from __future__ import annotations

INSTANCE = "number status healthy release restarts ip port node startedAt lastError exitCode"
CANARY = "desired placed healthy promoted autoPromote awaitingPromotion"
PROC = (
    "name type numInstances cpu memory health rollout runningReleases metaVersion lastError "
    f"deployed canary {{ {CANARY} }} instances {{ {INSTANCE} }}"
)
APP = f"name apptype status health metaVersion deployError procs {{ {PROC} }}"

APP_QUERY = f"query($name: String!) {{ app(name: $name) {{ {APP} }} }}"
APPS_QUERY = (
    "query($after: String) { apps(first: 100, after: $after) { "
    "nodes { name apptype status health metaVersion } pageInfo { hasNextPage endCursor } } }"
)
RELEASES_QUERY = (
    "query($name: String!, $after: String) { repo(name: $name) { "
    "releases(first: 100, after: $after) { nodes { metaVersion createdAt image } "
    "pageInfo { hasNextPage endCursor } } app { metaVersion status } } }"
)
VIEWER_QUERY = "{ viewer { name isAdmin } }"
MAINTAINERS_QUERY = "query($name: String!) { app(name: $name) { maintainers { username role } } }"
LOG_LINE = "time instance stream text"
LOGS_QUERY = (
    "query($name: String!, $tail: Int!) { app(name: $name) { procs { name "
    f"instances {{ number logs(tail: $tail) {{ {LOG_LINE} }} }} }} }} }}"
)

_ERRORS = "errors { code field message }"
REGISTER = f"mutation($name: String!) {{ registerRepo(input: {{name: $name}}) {{ {_ERRORS} }} }}"
PUBLISH = (
    "mutation($app: String!, $v: String!, $yaml: String!, $image: String) { publishRelease("
    "input: {app: $app, metaVersion: $v, lainYaml: $yaml, image: $image}) { "
    f"release {{ metaVersion image createdAt }} {_ERRORS} }} }}"
)
DEPLOY = (
    "mutation($name: String!, $v: String) { deployApp(input: {name: $name, metaVersion: $v}) "
    f"{{ app {{ {APP} }} {_ERRORS} }} }}"
)
UPDATE = (
    "mutation($name: String!, $v: String, $canary: CanaryInput) { updateApp("
    f"input: {{name: $name, metaVersion: $v, canary: $canary}}) {{ app {{ {APP} }} {_ERRORS} }} }}"
)
PROMOTE_APP = (
    f"mutation($name: String!) {{ promoteApp(input: {{name: $name}}) {{ app {{ {APP} }} "
    f"{_ERRORS} }} }}"
)
PROMOTE_PROC = (
    "mutation($app: String!, $proc: String!) { promoteProc("
    f"input: {{app: $app, proc: $proc}}) {{ proc {{ {PROC} }} {_ERRORS} }} }}"
)
UNDEPLOY = (
    f"mutation($name: String!) {{ undeployApp(input: {{name: $name}}) {{ app {{ {APP} }} "
    f"{_ERRORS} }} }}"
)
SCALE = (
    "mutation($app: String!, $proc: String!, $n: Int!) { scaleProc("
    f"input: {{app: $app, proc: $proc, numInstances: $n}}) {{ proc {{ {PROC} }} {_ERRORS} }} }}"
)
RESIZE = (
    "mutation($app: String!, $proc: String!, $cpu: Int, $memory: String) { resizeProc("
    "input: {app: $app, proc: $proc, cpu: $cpu, memory: $memory}) "
    f"{{ proc {{ {PROC} }} {_ERRORS} }} }}"
)


def instance_action(mutation: str) -> str:
    """restartProc, stopProc or startProc: one instance, or all of them."""
    return (
        f"mutation($app: String!, $proc: String!, $n: Int) {{ {mutation}("
        f"input: {{app: $app, proc: $proc, instance: $n}}) {{ proc {{ {PROC} }} {_ERRORS} }} }}"
    )


ADD_MAINTAINER = (
    "mutation($app: String!, $user: String!, $role: MaintainerRole!) { addMaintainer("
    f"input: {{app: $app, username: $user, role: $role}}) {{ maintainer {{ username role }} "
    f"{_ERRORS} }} }}"
)
REMOVE_MAINTAINER = (
    "mutation($app: String!, $user: String!) { removeMaintainer("
    f"input: {{app: $app, username: $user}}) {{ app {{ maintainers {{ username role }} }} "
    f"{_ERRORS} }} }}"
)

EVENT = (
    "cursor kind app { name status health } proc { name health rollout numInstances } "
    "instance { number status release lastError }"
)
APP_EVENTS = (
    f"subscription($name: String!, $after: String) {{ appEvents(name: $name, after: $after) "
    f"{{ {EVENT} }} }}"
)
LOGS_SUBSCRIPTION = (
    "subscription($app: String!, $proc: String!, $n: Int, $tail: Int!) { logs(app: $app, "
    f"proc: $proc, instance: $n, tail: $tail) {{ droppedLines cursor line {{ {LOG_LINE} }} }} }}"
)
