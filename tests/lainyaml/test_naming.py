from __future__ import annotations

import pytest

from lainyaml import (
    AppType,
    LainYamlError,
    ProcType,
    app_domain,
    app_name_problem,
    app_type_of,
    is_valid_proc_name,
    parse_resource_instance_name,
    pod_group_name,
    resource_instance_name,
    validate_app_name,
)
from tests.lainyaml.support import parse


def test_pod_group_name_joins_app_type_and_proc() -> None:
    assert pod_group_name("hello", "worker", "foo") == "hello.worker.foo"


def test_pod_group_name_accepts_a_proc_type() -> None:
    assert pod_group_name("echo-server", ProcType.PORTAL, "portal-echo") == (
        "echo-server.portal.portal-echo"
    )


def test_resource_instance_name_has_resource_then_client() -> None:
    assert resource_instance_name("redis", "hello") == "resource.redis.hello"


def test_parse_resource_instance_name_splits_resource_and_client() -> None:
    assert parse_resource_instance_name("resource.redis.hello") == ("redis", "hello")


@pytest.mark.parametrize(
    "name",
    [
        "hello",
        "resource",
        "resource.",
        "resource.redis",
        "resource.redis.",
        "resource..hello",
        "resource.redis.hello.x",
        "resource.re_dis.hello",
        "resources.redis.hello",
        "service.redis.hello",
    ],
)
def test_parse_resource_instance_name_refuses_other_names(name: str) -> None:
    assert parse_resource_instance_name(name) is None


@pytest.mark.parametrize(
    ("appname", "domain"),
    [
        ("hello", "hello"),
        ("resource.redis.rclient", "rclient.redis.resource"),
        ("a.b", "b.a"),
    ],
)
def test_app_domain_reverses_dot_segments(appname: str, domain: str) -> None:
    assert app_domain(appname) == domain


@pytest.mark.parametrize(
    "name", ["hello", "echo-server", "a", "A1-b2-C3", "for-validate", "resource.redis.hello"]
)
def test_validate_app_name_accepts_validator_names_and_resource_instances(name: str) -> None:
    validate_app_name(name)
    assert app_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    ["", "1hello", "-hello", "hello-", "hel--lo", "hel_lo", "hel.lo", "héllo", "hello ", "a.b.c"],
)
def test_validate_app_name_rejects_other_names(name: str) -> None:
    with pytest.raises(LainYamlError, match="invalid appname"):
        validate_app_name(name)


@pytest.mark.parametrize("name", ["service", "resource", "portal"])
def test_validate_app_name_rejects_reserved_names_with_lain_message(name: str) -> None:
    with pytest.raises(LainYamlError) as info:
        validate_app_name(name)
    assert str(info.value) == (
        f"appname: invalid lain conf: appname {name} should not in "
        "('service', 'resource', 'portal')"
    )


def test_app_name_problem_uses_the_given_path_and_names_the_type() -> None:
    problem = app_name_problem(42, path="use_services.42")
    assert problem is not None
    assert str(problem) == "use_services.42: appname must be a string, not int"


@pytest.mark.parametrize(
    ("name", "valid"), [("web", True), ("x1-y", True), ("web_canary", False), ("", False)]
)
def test_is_valid_proc_name_follows_the_validator_pattern(name: str, valid: bool) -> None:
    assert is_valid_proc_name(name) is valid


def test_app_type_of_plain_app_is_app() -> None:
    assert app_type_of("hello", parse({"web": {"cmd": "x"}})) is AppType.APP


def test_app_type_of_app_with_portal_is_service() -> None:
    config = parse({"service.echo": {"cmd": "echo", "portal": {"cmd": "proxy"}}})
    assert app_type_of("hello", config) is AppType.SERVICE


def test_app_type_of_resource_stays_resource_even_with_portals() -> None:
    config = parse(
        {"apptype": "resource", "service.redis": {"cmd": "redis", "portal": {"cmd": "proxy"}}},
        appname="redis",
    )
    assert app_type_of("redis", config) is AppType.RESOURCE


def test_app_type_of_resource_prefixed_name_is_resource_instance() -> None:
    config = parse({"service.redis": {"portal": {}}}, appname="resource.redis.hello")
    assert app_type_of("resource.redis.hello", config) is AppType.RESOURCE_INSTANCE


def test_app_type_of_unparsable_meta_is_unknown_unless_named_as_instance() -> None:
    assert app_type_of("hello", None) is AppType.UNKNOWN
    assert app_type_of("resource.redis.hello", None) is AppType.RESOURCE_INSTANCE


def test_app_type_values_are_lain_strings() -> None:
    assert [t.value for t in AppType] == [
        "app",
        "service",
        "resource",
        "resource-instance",
        "unknown",
    ]
