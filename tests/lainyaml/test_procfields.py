"""Commands, env, labels, filters, health checks, mountpoints and dns_search."""

from __future__ import annotations

import pytest

from lainyaml import ContainerHealthcheck, default_mountpoints
from tests.lainyaml.support import one_proc, problems


def test_cmd_shell_form_is_split_on_whitespace() -> None:
    assert one_proc("worker.x", {"cmd": "  worker -c   1\n"}).cmd == ("worker", "-c", "1")


def test_cmd_exec_form_is_kept() -> None:
    assert one_proc("worker.x", {"cmd": ["sh", "-c", "a b"]}).cmd == ("sh", "-c", "a b")


def test_entrypoint_follows_the_same_rules() -> None:
    proc = one_proc("worker.x", {"entrypoint": "/entry.sh run", "cmd": []})
    assert (proc.entrypoint, proc.cmd) == (("/entry.sh", "run"), ())


def test_commands_of_other_types_are_refused() -> None:
    assert problems({"worker.x": {"cmd": 3, "entrypoint": ["a", 1]}}) == [
        "procs.x.entrypoint[1]: must be a string, not an integer",
        "procs.x.cmd: must be a string or a list of strings, not an integer",
    ]


def test_env_is_a_list_of_key_value_strings() -> None:
    env = ["A=1", "B=", "C=x=y", "lower_case=ok"]
    assert one_proc("worker.x", {"env": env}).env == tuple(env)


def test_env_mapping_is_converted_like_the_old_parser_accepted() -> None:
    proc = one_proc("worker.x", {"env": {"REDIS_ADDR": "redis:3333", "N": 3, "F": 1.5}})
    assert proc.env == ("REDIS_ADDR=redis:3333", "N=3", "F=1.5")


def test_env_entries_are_checked() -> None:
    assert problems({"worker.x": {"env": ["A=1", "NOVALUE", "=x", 5, " A=1"]}}) == [
        "procs.x.env[3]: must be a string, not an integer",
        "procs.x.env[1]: must be KEY=VALUE, not 'NOVALUE'",
        "procs.x.env[2]: must be KEY=VALUE, not '=x'",
        "procs.x.env[4]: must be KEY=VALUE, not ' A=1'",
    ]


def test_env_mapping_values_and_names_are_checked() -> None:
    assert problems({"worker.x": {"env": {"A": True, "B": None, "C=D": "x", "E": [1]}}}) == [
        "procs.x.env.A: must be a string or a number, not a boolean",
        "procs.x.env.B: must be a string or a number, not null",
        "procs.x.env.C=D: invalid variable name 'C=D'",
        "procs.x.env.E: must be a string or a number, not a list",
    ]


def test_env_of_another_type_is_refused() -> None:
    assert problems({"worker.x": {"env": "A=1"}}) == [
        "procs.x.env: must be a list of strings, not a string"
    ]


def test_labels_from_key_value_strings_split_at_the_last_colon() -> None:
    proc = one_proc("worker.x", {"labels": ["team:infra", "url:http://x", "empty:"]})
    assert dict(proc.labels) == {"team": "infra", "url:http": "//x", "empty": ""}


def test_labels_accept_a_single_string_and_a_mapping() -> None:
    assert dict(one_proc("worker.x", {"labels": "a:b"}).labels) == {"a": "b"}
    assert dict(one_proc("worker.x", {"labels": {"a": "b", "n": 1}}).labels) == {"a": "b", "n": "1"}


def test_bad_labels_use_lain_message() -> None:
    assert problems({"worker.x": {"labels": ["nocolon", ":v"]}}) == [
        "procs.x.labels[0]: not supported labels desc 'nocolon'",
        "procs.x.labels[1]: not supported labels desc ':v'",
    ]
    assert problems({"worker.x": {"labels": {"a": None}}}) == [
        "procs.x.labels.a: must be a string or a number, not null"
    ]
    assert problems({"worker.x": {"labels": 5}}) == [
        "procs.x.labels: must be a list of strings, not an integer"
    ]


def test_filters_get_the_default_group_constraint() -> None:
    proc = one_proc("worker.x", {"filters": ["affinity:container!=x"]})
    assert proc.filters == ("affinity:container!=x", "constraint:group==default")
    assert one_proc("worker.x", {"filters": []}).filters == ("constraint:group==default",)


@pytest.mark.parametrize("group", ["constraint:group==gpu", "constraint:group!=default"])
def test_filters_with_a_group_constraint_get_no_default(group: str) -> None:
    assert one_proc("worker.x", {"filters": group}).filters == (group,)


def test_bad_filters_are_refused() -> None:
    (problem,) = problems({"worker.x": {"filters": ["affinity:x"]}})
    assert problem.startswith("procs.x.filters[0]: not supported filters desc 'affinity:x'")
    assert problems({"worker.x": {"filters": {"a": "b"}}}) == [
        "procs.x.filters: must be a list of strings, not a mapping"
    ]


def test_healthcheck_is_a_web_url_path() -> None:
    assert one_proc("web", {"healthcheck": "/health"}).healthcheck == "/health"
    assert one_proc("web", {"healthcheck": ""}).healthcheck == ""
    assert problems({"web": {"healthcheck": "health"}}) == [
        "procs.web.healthcheck: must be a URL path starting with '/', not 'health'"
    ]
    assert problems({"web": {"healthcheck": 200}}) == [
        "procs.web.healthcheck: must be a string, not an integer"
    ]


def test_container_healthcheck_with_options() -> None:
    fields = {"cmd": "curl -f localhost", "options": {"interval": 5, "timeout": 2, "retries": 1}}
    proc = one_proc("worker.x", {"container_healthcheck": fields})
    assert proc.container_healthcheck == ContainerHealthcheck("curl -f localhost", 5, 2, 1)
    assert not proc.container_healthcheck.disabled


def test_container_healthcheck_none_disables() -> None:
    check = one_proc("worker.x", {"container_healthcheck": {"cmd": "none"}}).container_healthcheck
    assert check == ContainerHealthcheck("none")
    assert check.disabled


def test_container_healthcheck_is_checked() -> None:
    assert problems({"worker.x": {"container_healthcheck": {"options": {}}}}) == [
        "procs.x.container_healthcheck.cmd: is required"
    ]
    assert problems(
        {
            "worker.x": {
                "container_healthcheck": {
                    "cmd": "x",
                    "every": 1,
                    "options": {"interval": "5s", "start": 1},
                }
            }
        }
    ) == [
        "procs.x.container_healthcheck.every: unknown field; expected cmd or options",
        "procs.x.container_healthcheck.options.interval: must be a whole number >= 0, not '5s'",
        "procs.x.container_healthcheck.options.start: unknown option; expected one of "
        "('interval', 'timeout', 'retries')",
    ]
    assert problems({"worker.x": {"container_healthcheck": "curl"}}) == [
        "procs.x.container_healthcheck: must be a mapping, not a string"
    ]


def test_default_mountpoints_per_domain_then_lain() -> None:
    assert default_mountpoints("resource.redis.c", ["a.com", "b.com"]) == (
        "c.redis.resource.a.com",
        "c.redis.resource.b.com",
        "c.redis.resource.lain",
    )
    assert default_mountpoints("hello", []) == ("hello.lain",)


def test_web_mountpoints_add_missing_defaults_after_the_given_list() -> None:
    proc = one_proc("web", {"mountpoint": ["hello.lain", "www.example.com"]})
    assert proc.mountpoints == ("hello.lain", "www.example.com", "hello.lain.local")


def test_web_mountpoints_drop_bare_slash_and_duplicates() -> None:
    proc = one_proc("web", {"mountpoint": ["/", "/x", "hello.lain/x"]})
    assert proc.mountpoints == (
        "hello.lain/x",
        "hello.lain.local",
        "hello.lain",
        "hello.lain.local/x",
    )


def test_other_web_proc_needs_its_own_mountpoint() -> None:
    message = "proc (type is web but name is not web) should have own mountpoint"
    assert problems({"web.admin": {}}) == [f"procs.admin.mountpoint: {message} (a non-empty list)"]
    assert problems({"web.admin": {"mountpoint": []}}) == [
        f"procs.admin.mountpoint: {message} (a non-empty list)"
    ]
    assert problems({"web.admin": {"mountpoint": ["/"]}}) == [f"procs.admin.mountpoint: {message}"]


def test_mountpoint_must_be_a_list_of_non_empty_strings() -> None:
    assert problems({"web": {"mountpoint": "a.com"}}) == [
        "procs.web.mountpoint: must be a list of strings, not a string"
    ]
    assert problems({"web": {"mountpoint": ["a.com", ""]}}) == [
        "procs.web.mountpoint[1]: must not be empty"
    ]


def test_dns_search_always_ends_with_the_app_domain() -> None:
    assert one_proc("worker.x", {"dns_search": ["svc.local"]}).dns_search == (
        "svc.local",
        "hello.lain",
    )
    assert one_proc("worker.x", {"dns_search": ["hello.lain", "a"]}).dns_search == (
        "hello.lain",
        "a",
    )
    assert problems({"worker.x": {"dns_search": "a"}}) == [
        "procs.x.dns_search: must be a list of strings, not a string"
    ]
