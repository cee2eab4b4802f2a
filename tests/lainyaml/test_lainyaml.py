"""Top-level keys of lain.yaml (COMPAT 5.1) and the shape of parse errors."""

from __future__ import annotations

import pytest

from lainyaml import AppKind, LainYamlError, Problem, ResourceUse, parse_lain_yaml
from tests.lainyaml.support import dump, parse, problems, problems_of


def test_minimal_document_is_an_app_without_procs() -> None:
    config = parse_lain_yaml("appname: hello\n")
    assert config.appname == "hello"
    assert config.apptype is AppKind.APP
    assert config.procs == ()
    assert config.giturl is None
    assert config.build is None
    assert dict(config.use_services) == {}
    assert dict(config.use_resources) == {}
    assert dict(config.notify) == {}


def test_resource_without_procs_is_valid_too() -> None:
    assert parse_lain_yaml("appname: redis\napptype: resource\n").procs == ()


def test_original_text_is_kept() -> None:
    text = "appname: hello   # trailing comment\nweb: {cmd: run}\n"
    assert parse_lain_yaml(text).text == text


def test_missing_appname_uses_lain_message() -> None:
    assert problems({"web": {"cmd": "x"}}, appname=None) == [
        "appname: invalid lain conf: no appname"
    ]


def test_null_appname_counts_as_missing() -> None:
    assert problems_of("appname:\n") == ["appname: invalid lain conf: no appname"]


@pytest.mark.parametrize("name", ["service", "resource", "portal"])
def test_reserved_appname_uses_lain_message(name: str) -> None:
    assert problems({}, appname=name) == [
        f"appname: invalid lain conf: appname {name} should not in "
        "('service', 'resource', 'portal')"
    ]


@pytest.mark.parametrize("name", ["hel_lo", "1x", "a.b", "x-"])
def test_appname_must_follow_the_validator_pattern(name: str) -> None:
    (problem,) = problems({}, appname=name)
    assert problem.startswith(f"appname: invalid appname {name!r}: must start with a letter")


def test_appname_must_be_a_string() -> None:
    assert problems_of("appname: 123\n") == ["appname: appname must be a string, not int"]


def test_resource_instance_appname_is_accepted() -> None:
    assert parse({}, appname="resource.redis.hello").appname == "resource.redis.hello"


@pytest.mark.parametrize(("value", "kind"), [("app", AppKind.APP), ("resource", AppKind.RESOURCE)])
def test_apptype_values(value: str, kind: AppKind) -> None:
    assert parse({"apptype": value}).apptype is kind


@pytest.mark.parametrize("value", ["service", "resource-instance", "App", 1, ["app"]])
def test_apptype_other_values_are_refused(value: object) -> None:
    (problem,) = problems({"apptype": value})
    assert problem.startswith("apptype: must be app or resource")


def test_giturl_is_kept_and_must_be_a_string() -> None:
    url = "http://gitlab.example.com/lain/hello"
    assert parse({"giturl": url}).giturl == url
    assert problems({"giturl": 5}) == ["giturl: must be a string, not an integer"]


def test_build_is_optional() -> None:
    assert parse({}).build is None
    assert parse({"build": None}).build is None


def test_build_without_base_uses_lain_message() -> None:
    assert problems({"build": {"script": ["make"]}}) == ["build.base: no base in section build"]


def test_build_base_and_script_types_are_checked() -> None:
    assert problems({"build": {"base": 3, "script": "make"}}) == [
        "build.base: must be a string, not an integer",
        "build.script: must be a list of strings, not a string",
    ]


def test_build_must_be_a_mapping() -> None:
    assert problems({"build": ["golang"]}) == ["build: must be a mapping, not a list"]


def test_build_only_sections_are_not_read() -> None:
    config = parse({"release": "anything", "test": 42, "build": {"base": "b", "prepare": 1}})
    assert config.build is not None
    assert config.build.script == ()


def test_unknown_top_level_keys_are_ignored() -> None:
    assert parse({"description": "x", "daemon.foo": {"cmd": "x"}, "x-anchor": [1]}).procs == ()


def test_non_string_top_level_keys_are_ignored() -> None:
    assert parse_lain_yaml("appname: hello\n1: x\nnull: y\n").procs == ()


def test_use_services_maps_apps_to_service_names() -> None:
    config = parse({"use_services": {"echo-server": ["echo"], "b": []}})
    assert dict(config.use_services) == {"echo-server": ("echo",), "b": ()}


def test_use_services_shapes_are_checked() -> None:
    assert problems({"use_services": ["echo"]}) == ["use_services: must be a mapping, not a list"]
    assert problems({"use_services": {"echo-server": "echo"}}) == [
        "use_services.echo-server: must be a list of strings, not a string"
    ]
    found = problems({"use_services": {"bad_app": ["echo"], "ok": ["bad_name"]}})
    assert found[0].startswith("use_services.bad_app: invalid appname 'bad_app'")
    assert found[1].startswith("use_services.ok[0]: invalid service name 'bad_name'")


def test_use_resources_splits_services_and_context() -> None:
    config = parse(
        {"use_resources": {"redis": {"memory": "128M", "num_instances": 1, "services": ["redis"]}}}
    )
    assert config.use_resources["redis"] == ResourceUse(
        ("redis",), {"memory": "128M", "num_instances": 1}
    )


def test_use_resources_without_services_uses_lain_wording() -> None:
    assert problems({"use_resources": {"redis": {"memory": "128M"}}}) == [
        "use_resources.redis.services: invalid resource defination: services is required"
    ]


def test_use_resources_context_values_are_strings_or_integers() -> None:
    found = problems(
        {"use_resources": {"redis": {"services": ["redis"], "a": True, "b": 1.5, "c": [1]}}}
    )
    assert found == [
        "use_resources.redis.a: must be a string or an integer, not True",
        "use_resources.redis.b: must be a string or an integer, not 1.5",
        "use_resources.redis.c: must be a string or an integer, not a list",
    ]


def test_use_resources_entry_must_be_a_mapping_and_name_valid() -> None:
    assert problems({"use_resources": {"redis": ["redis"]}}) == [
        "use_resources.redis: must be a mapping, not a list"
    ]
    (problem,) = problems({"use_resources": {"re_dis": {"services": ["x"]}}})
    assert problem.startswith("use_resources.re_dis: invalid resource name")


def test_notify_is_a_mapping_of_strings() -> None:
    config = parse({"notify": {"slack": "#lain", "bearychat": "x"}})
    assert dict(config.notify) == {"slack": "#lain", "bearychat": "x"}
    assert problems({"notify": {"slack": 1}}) == ["notify.slack: must be a string, not an integer"]
    assert problems({"notify": "#lain"}) == ["notify: must be a mapping, not a string"]


def test_every_problem_is_collected_in_one_error() -> None:
    text = dump(
        {
            "apptype": "service",
            "web": {"memory": "lots", "num_instances": -1},
            "worker.x": {"cpu": "two"},
            "notify": 3,
        },
        appname="bad_name",
    )
    with pytest.raises(LainYamlError) as info:
        parse_lain_yaml(text)
    paths = [p.path for p in info.value.problems]
    assert paths == [
        "appname",
        "apptype",
        "procs.web.num_instances",
        "procs.web.memory",
        "procs.x.cpu",
        "notify",
    ]
    assert str(info.value).splitlines() == [str(p) for p in info.value.problems]


def test_lain_yaml_error_str_lists_each_problem_with_its_path() -> None:
    error = LainYamlError([Problem("procs.web.memory", "bad"), Problem("appname", "missing")])
    assert str(error) == "procs.web.memory: bad\nappname: missing"
    assert isinstance(error, ValueError)
    assert "procs.web.memory" in repr(error)


def test_lain_yaml_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        LainYamlError([])


def test_config_proc_finds_by_name() -> None:
    config = parse({"web": {}, "worker.foo": {}})
    assert config.proc("foo") is config.procs[1]
    assert config.proc("bar") is None


def test_a_single_domain_string_is_one_domain() -> None:
    config = parse_lain_yaml(dump({"web": {}}), domains="example.com")
    assert config.procs[0].mountpoints == ("hello.example.com", "hello.lain")


def test_config_is_immutable() -> None:
    config = parse({"web": {"labels": ["a:b"]}, "use_services": {"x": ["y"]}})
    with pytest.raises(AttributeError):
        config.appname = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.use_services["z"] = ()  # type: ignore[index]
    with pytest.raises(TypeError):
        config.procs[0].labels["c"] = "d"  # type: ignore[index]
