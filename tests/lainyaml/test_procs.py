"""Proc sections (COMPAT 5.2) and the scalar proc fields of 5.3."""

from __future__ import annotations

import pytest

from lainyaml import ProcType
from tests.lainyaml.support import one_proc, parse, problems


@pytest.mark.parametrize(
    ("key", "name", "ptype"),
    [
        ("web", "web", ProcType.WEB),
        ("worker", "worker", ProcType.WORKER),
        ("oneshot", "oneshot", ProcType.ONESHOT),
        ("worker.foo", "foo", ProcType.WORKER),
        ("oneshot.init-db", "init-db", ProcType.ONESHOT),
        ("proc.bar", "bar", ProcType.WORKER),
    ],
)
def test_section_key_gives_name_and_type(key: str, name: str, ptype: ProcType) -> None:
    proc = one_proc(key, {})
    assert (proc.name, proc.type, proc.section) == (name, ptype, key)


def test_web_dot_name_is_a_web_proc_needing_its_own_mountpoint() -> None:
    proc = one_proc("web.admin", {"mountpoint": ["admin.example.com"]})
    assert (proc.name, proc.type, proc.mountpoints) == (
        "admin",
        ProcType.WEB,
        ("admin.example.com",),
    )


def test_portal_dot_name_is_a_portal() -> None:
    proc = one_proc("portal.p", {"service_name": "s"})
    assert (proc.name, proc.type, proc.service_name, proc.allow_clients) == (
        "p",
        ProcType.PORTAL,
        "s",
        "**",
    )


@pytest.mark.parametrize("ptype", ["web", "worker", "oneshot", "portal"])
def test_proc_dot_name_reads_type_field(ptype: str) -> None:
    fields = {"type": ptype, "mountpoint": ["x.com"], "service_name": "s"}
    assert one_proc("proc.x", fields).type is ProcType(ptype)


def test_proc_dot_name_with_unknown_type_is_refused() -> None:
    assert problems({"proc.x": {"type": "daemon"}}) == [
        "procs.x.type: unknown proc type 'daemon': expected one of web, worker, oneshot, portal"
    ]


def test_type_field_contradicting_a_typed_key_is_refused() -> None:
    assert problems({"worker.x": {"type": "web"}}) == [
        "procs.x.type: type 'web' conflicts with section key worker.x"
    ]
    assert one_proc("worker.x", {"type": "worker"}).type is ProcType.WORKER


def test_service_shorthand_yields_worker_then_portal() -> None:
    config = parse(
        {
            "service.echo": {
                "cmd": "./echo -p 1234",
                "port": 1234,
                "num_instances": 3,
                "portal": {"cmd": "./proxy", "port": 10000, "allow_clients": "a"},
            }
        }
    )
    worker, portal = config.procs
    assert (worker.name, worker.type, worker.num_instances) == ("echo", ProcType.WORKER, 3)
    assert (portal.name, portal.type, portal.service_name) == (
        "portal-echo",
        ProcType.PORTAL,
        "echo",
    )
    assert (portal.num_instances, portal.allow_clients) == (1, "a")
    assert portal.section == worker.section == "service.echo"


def test_service_shorthand_honours_type_for_the_worker_part() -> None:
    config = parse({"service.s": {"type": "oneshot", "portal": {}}})
    assert [p.type for p in config.procs] == [ProcType.ONESHOT, ProcType.PORTAL]


def test_service_shorthand_overrides_service_name_of_its_portal() -> None:
    config = parse({"service.echo": {"portal": {"service_name": "other"}}})
    assert config.procs[1].service_name == "echo"


def test_service_shorthand_requires_portal() -> None:
    assert problems({"service.echo": {"cmd": "x"}}) == [
        "service.echo.portal: is required: a service section defines its portal"
    ]


@pytest.mark.parametrize("key", ["service.", "service.a.b"])
def test_bad_service_keyword_uses_lain_message(key: str) -> None:
    assert problems({key: {"portal": {}}}) == [f"{key}: invalid service keyword: {key}"]


@pytest.mark.parametrize("key", ["web.a.b", "worker.", "proc", "portal", "service", "proc.a.b"])
def test_malformed_section_keys_are_refused(key: str) -> None:
    (problem,) = problems({key: {}})
    assert problem.startswith(f"{key}: invalid ")


@pytest.mark.parametrize("key", ["daemon.x", "webx", "workers", "cron.job", "x.web"])
def test_keys_not_starting_with_a_proc_type_are_not_procs(key: str) -> None:
    assert parse({key: {"cmd": "x"}}).procs == ()


def test_invalid_proc_names_are_refused() -> None:
    (problem,) = problems({"worker.my_worker": {}})
    assert problem.startswith("worker.my_worker: invalid proc name 'my_worker': must start with")


def test_duplicated_proc_names_use_lain_message() -> None:
    assert problems({"web": {}, "web.web": {}}) == ["web.web: duplicated proc name web"]
    assert problems({"worker.echo": {}, "service.echo": {"portal": {}}}) == [
        "service.echo: duplicated proc name echo"
    ]
    assert problems(
        {"portal.portal-echo": {"service_name": "x"}, "service.echo": {"portal": {}}}
    ) == ["service.echo: duplicated proc name portal-echo"]


@pytest.mark.parametrize("value", [None, "cmd", ["cmd"], 3])
def test_section_must_be_a_mapping(value: object) -> None:
    (problem,) = problems({"worker.x": value})
    assert problem.startswith("worker.x: must be a mapping")


def test_section_fields_must_have_string_keys() -> None:
    assert problems({"worker.x": {1: "a"}}) == [
        "worker.x: keys must be strings, not an integer (1)"
    ]


def test_unknown_proc_fields_are_refused() -> None:
    assert problems({"web": {"num_instance": 3, "cmd": "x"}}) == [
        "procs.web.num_instance: unknown field"
    ]


def test_fields_of_other_proc_types_are_ignored() -> None:
    worker = one_proc(
        "worker.x", {"mountpoint": 5, "https_only": "no", "healthcheck": 1, "service_name": 2}
    )
    assert (worker.mountpoints, worker.https_only, worker.healthcheck, worker.service_name) == (
        (),
        True,
        "",
        None,
    )


def test_defaults_of_a_worker() -> None:
    worker = one_proc("worker.x", {})
    assert worker.image is None
    assert worker.entrypoint is None
    assert worker.cmd is None
    assert (worker.user, worker.working_dir) == ("", "")
    assert (worker.num_instances, worker.cpu, worker.memory) == (1, 0, "32m")
    assert worker.port is None
    assert worker.ports == ()
    assert worker.https_only is True
    assert worker.healthcheck == ""
    assert worker.container_healthcheck is None
    assert worker.env == ()
    assert worker.logs == ()
    assert worker.secret_files == ()
    assert worker.persistent_dirs == ("/lain/logs",)
    assert worker.backups == ()
    assert worker.cloud_volumes is None
    assert (worker.stateful, worker.secret_files_bypass) == (False, False)
    assert (worker.setup_time, worker.kill_timeout) == (0, 10)
    assert dict(worker.labels) == {}
    assert worker.filters == ("constraint:group==default",)
    assert worker.dns_search == ("hello.lain",)
    assert worker.service_name is None
    assert worker.allow_clients is None
    assert worker.templated == ()


def test_null_fields_count_as_absent() -> None:
    fields = dict.fromkeys(["image", "cmd", "user", "num_instances", "memory", "port", "env"])
    assert one_proc("worker.x", fields) == one_proc("worker.x", {})


def test_image_and_user_and_workdir() -> None:
    proc = one_proc("worker.x", {"image": "r/x:1", "user": "nobody", "working_dir": "/srv"})
    assert (proc.image, proc.user, proc.working_dir) == ("r/x:1", "nobody", "/srv")


def test_workdir_wins_over_working_dir() -> None:
    assert one_proc("worker.x", {"workdir": "/a", "working_dir": "/b"}).working_dir == "/a"
    assert one_proc("worker.x", {"workdir": "", "working_dir": "/b"}).working_dir == "/b"


def test_string_fields_are_type_checked() -> None:
    assert problems({"worker.x": {"image": 1, "user": [], "workdir": 2, "allow_clients": 3}}) == [
        "procs.x.workdir: must be a string, not an integer",
        "procs.x.image: must be a string, not an integer",
        "procs.x.user: must be a string, not a list",
    ]


def test_empty_image_is_refused() -> None:
    assert problems({"worker.x": {"image": " "}}) == ["procs.x.image: must not be empty"]


@pytest.mark.parametrize("value", [0, 1, 30])
def test_num_instances_accepts_whole_numbers(value: int) -> None:
    assert one_proc("worker.x", {"num_instances": value}).num_instances == value


@pytest.mark.parametrize(
    ("value", "shown"), [(-1, "-1"), (True, "True"), ("2", "'2'"), (1.5, "1.5"), ([1], "a list")]
)
def test_num_instances_rejects_other_values(value: object, shown: str) -> None:
    assert problems({"web": {"num_instances": value}}) == [
        f"procs.web.num_instances: must be a whole number >= 0, not {shown}"
    ]


def test_cpu_is_a_non_negative_integer_kept_as_written() -> None:
    assert one_proc("worker.x", {"cpu": 16}).cpu == 16
    assert problems({"worker.x": {"cpu": -1}}) == [
        "procs.x.cpu: must be a whole number >= 0, not -1"
    ]
    assert problems({"worker.x": {"cpu": False}}) == [
        "procs.x.cpu: must be a whole number >= 0, not False"
    ]


@pytest.mark.parametrize(("cpu", "effective"), [(0, 2), (1, 1), (4, 4), (8, 8), (16, 8)])
def test_effective_cpu_follows_deployd(cpu: int, effective: int) -> None:
    assert one_proc("worker.x", {"cpu": cpu}).effective_cpu == effective


@pytest.mark.parametrize(
    ("value", "expected"),
    [("64m", 64 * 1024**2), ("2G", 2 * 1024**3), ("1.5G", 1610612736), ("128 MB", 128 * 1024**2)],
)
def test_memory_keeps_text_and_bytes(value: str, expected: int) -> None:
    proc = one_proc("worker.x", {"memory": value})
    assert (proc.memory, proc.memory_bytes) == (value, expected)


@pytest.mark.parametrize("value", ["128a", "M", "", "-5m", "0m", "lots"])
def test_memory_rejects_bad_size_strings(value: str) -> None:
    (problem,) = problems({"web": {"memory": value}})
    assert problem.startswith("procs.web.memory: ")
    assert "1024-based" in problem


@pytest.mark.parametrize("value", [1024, 1.5, True, ["64m"]])
def test_memory_rejects_non_strings(value: object) -> None:
    (problem,) = problems({"web": {"memory": value}})
    assert problem.startswith("procs.web.memory: must be a size string such as '32m'")


def test_resource_templates_may_hold_jinja_in_numeric_fields() -> None:
    fields = {
        "num_instances": "{{ n|default(2) }}",
        "cpu": "{{ cpu }}",
        "memory": "{% if x %}1g{% endif %}",
    }
    (proc,) = parse({"apptype": "resource", "worker.r": fields}, appname="redis").procs
    assert (proc.num_instances_raw, proc.cpu_raw, proc.memory) == (
        "{{ n|default(2) }}",
        "{{ cpu }}",
        "{% if x %}1g{% endif %}",
    )
    assert (proc.num_instances, proc.cpu, proc.memory_bytes) == (1, 0, 32 * 1024**2)
    assert proc.templated == ("num_instances", "cpu", "memory")


def test_resource_templates_still_check_plain_values() -> None:
    assert problems(
        {"apptype": "resource", "worker.r": {"num_instances": "two"}}, appname="redis"
    ) == ["procs.r.num_instances: must be a whole number >= 0, not 'two'"]


@pytest.mark.parametrize("field", ["https_only", "stateful", "secret_files_bypass"])
def test_boolean_fields_refuse_other_types(field: str) -> None:
    assert problems({"web": {field: "yes"}}) == [
        f"procs.web.{field}: must be true or false, not a string"
    ]


def test_https_only_defaults_false_for_web_and_true_otherwise() -> None:
    assert one_proc("web", {}).https_only is False
    assert one_proc("web", {"https_only": True}).https_only is True
    assert one_proc("oneshot.x", {"https_only": False}).https_only is True


@pytest.mark.parametrize(("value", "expected"), [(-5, 0), (0, 0), (60, 60), (500, 120)])
def test_setup_time_is_clamped_to_0_120(value: int, expected: int) -> None:
    assert one_proc("worker.x", {"setup_time": value}).setup_time == expected


@pytest.mark.parametrize(("value", "expected"), [(0, 10), (10, 10), (30, 30), (500, 60)])
def test_kill_timeout_is_clamped_to_10_60(value: int, expected: int) -> None:
    assert one_proc("worker.x", {"kill_timeout": value}).kill_timeout == expected


def test_timing_fields_must_be_integers() -> None:
    assert problems({"worker.x": {"setup_time": "10s", "kill_timeout": True}}) == [
        "procs.x.setup_time: must be an integer, not '10s'",
        "procs.x.kill_timeout: must be an integer, not True",
    ]


def test_portal_requires_service_name_with_lain_wording() -> None:
    assert problems({"portal.p": {"cmd": "x"}}) == [
        "procs.p.service_name: proc (type is portal) should have own service_name"
    ]
    assert problems({"portal.p": {"service_name": ""}}) == [
        "procs.p.service_name: must not be empty"
    ]


def test_pod_group_name_of_a_proc() -> None:
    assert one_proc("worker.foo", {}).pod_group_name("hello") == "hello.worker.foo"
