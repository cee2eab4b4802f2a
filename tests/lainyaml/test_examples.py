"""The example files of COMPAT 5.6 and the mountpoint example of 5.4."""

from __future__ import annotations

from lainyaml import (
    AppKind,
    BackupEntry,
    BackupMode,
    PortSpec,
    ProcType,
    Protocol,
    ResourceUse,
    parse_lain_yaml,
)
from tests.lainyaml.support import data_text, one_proc, problems_of


def test_hello_has_one_web_proc_on_port_80_with_default_mountpoints() -> None:
    config = parse_lain_yaml(data_text("hello.yaml"))
    assert config.appname == "hello"
    assert config.apptype is AppKind.APP
    assert [p.name for p in config.procs] == ["web"]
    web = config.procs[0]
    assert web.type is ProcType.WEB
    assert web.pod_group_name(config.appname) == "hello.web.web"
    assert web.port == PortSpec(80, Protocol.TCP)
    assert web.mountpoints == ("hello.lain.local", "hello.lain")
    assert web.cmd == ("hello",)
    assert web.entrypoint is None
    assert web.https_only is False
    assert web.memory == "32m"
    assert web.memory_bytes == 33554432
    assert web.num_instances == 1
    assert web.cpu == 0
    assert web.persistent_dirs == ("/lain/logs",)
    assert web.dns_search == ("hello.lain",)
    assert web.filters == ("constraint:group==default",)
    assert dict(config.notify) == {"slack": "#hello"}
    assert config.build is not None
    assert config.build.base == "golang"
    assert config.build.script == ("go build -o hello",)


def test_hello_mountpoints_follow_the_cluster_domains() -> None:
    config = parse_lain_yaml(data_text("hello.yaml"), domains=["example.com", "lain.cloud"])
    assert config.procs[0].mountpoints == ("hello.example.com", "hello.lain.cloud", "hello.lain")


def test_for_validate_yields_the_documented_procs_in_file_order() -> None:
    config = parse_lain_yaml(data_text("for_validate.yaml"))
    assert [(p.name, p.type) for p in config.procs] == [
        ("web", ProcType.WEB),
        ("x1-y", ProcType.WORKER),
        ("portal-x1", ProcType.PORTAL),
        ("echo", ProcType.WORKER),
        ("portal-echo", ProcType.PORTAL),
    ]


def test_for_validate_web_values() -> None:
    web = parse_lain_yaml(data_text("for_validate.yaml")).procs[0]
    assert web.port == PortSpec(8000)
    assert web.memory == "256m"
    assert web.memory_bytes == 256 * 1024**2
    assert web.stateful is True
    assert web.mountpoints == ("for-validate.lain.local", "for-validate.lain")
    assert web.cmd == (
        "tail",
        "-f",
        "/lain/app/bundle/prepare_version",
        "/lain/app/production",
    )


def test_for_validate_worker_volumes_and_backups() -> None:
    worker = parse_lain_yaml(data_text("for_validate.yaml")).proc("x1-y")
    assert worker is not None
    assert worker.port is None
    assert worker.persistent_dirs == ("/logs", "/data", "/lain/logs")
    assert worker.backups == (
        BackupEntry(
            volume="/data",
            mode=BackupMode.FULL,
            schedule="* * * * 0",
            expire="30d",
            pre_run="backup.sh",
            post_run="end-backup.py",
        ),
        BackupEntry(volume="/data", mode=BackupMode.INCREMENT, schedule="0 23 * * *", expire="10d"),
    )
    assert worker.uses_persistent_storage


def test_for_validate_portals_and_service_worker() -> None:
    config = parse_lain_yaml(data_text("for_validate.yaml"))
    portal_x1 = config.proc("portal-x1")
    echo = config.proc("echo")
    portal_echo = config.proc("portal-echo")
    assert portal_x1 is not None
    assert echo is not None
    assert portal_echo is not None
    assert (portal_x1.service_name, portal_x1.port, portal_x1.allow_clients) == (
        "x1-y",
        PortSpec(10000),
        "**",
    )
    assert (echo.num_instances, echo.port, echo.service_name) == (3, PortSpec(1234), None)
    assert echo.section == "service.echo"
    assert (portal_echo.service_name, portal_echo.port, portal_echo.cmd) == (
        "echo",
        PortSpec(10000),
        ("./proxy",),
    )
    assert portal_echo.pod_group_name("for-validate") == "for-validate.portal.portal-echo"
    assert config.portal_for_service("echo") is portal_echo
    assert config.portal_for_service("missing") is None


def test_for_validate_top_level_sections() -> None:
    config = parse_lain_yaml(data_text("for_validate.yaml"))
    assert dict(config.use_services) == {
        "echo-server": ("echo",),
        "hello-server": ("hello", "goodbye"),
    }
    assert dict(config.use_resources) == {
        "redis": ResourceUse(("redis",), {"num_instances": 2, "memory": "128M", "cpu": 1})
    }
    assert dict(config.notify) == {"slack": "#lain"}
    assert config.build is not None
    assert config.build.base == "centos:7.1.1503"


def test_redis_resource_template_keeps_jinja_text() -> None:
    config = parse_lain_yaml(data_text("redis_resource.yaml"))
    assert config.apptype is AppKind.RESOURCE
    assert [p.name for p in config.procs] == ["redis", "portal-redis"]
    redis = config.procs[0]
    assert redis.num_instances_raw == "{{ num_instances|default(2)|int(2) }}"
    assert redis.num_instances == 1
    assert redis.memory == "{{ memory|default('64M') }}"
    assert redis.templated == ("num_instances", "memory")
    assert redis.port == PortSpec(3333)
    portal = config.procs[1]
    assert portal.service_name == "redis"
    assert portal.templated == ()


def test_redis_client_uses_the_resource() -> None:
    config = parse_lain_yaml(data_text("redis_client.yaml"))
    assert dict(config.use_resources) == {
        "redis": ResourceUse(("redis",), {"memory": "128M", "num_instances": 1})
    }
    web = config.procs[0]
    assert web.env == ("REDIS_ADDR=redis:3333",)
    assert web.cmd == ("/hello",)


def test_rendered_resource_instance_parses_under_its_dotted_name() -> None:
    rendered = (
        data_text("redis_resource.yaml")
        .replace("appname: redis", "appname: resource.redis.hello")
        .replace("apptype: resource\n", "")
        .replace('"{{ num_instances|default(2)|int(2) }}"', "1")
        .replace("\"{{ memory|default('64M') }}\"", "128M")
    )
    config = parse_lain_yaml(rendered)
    redis = config.proc("redis")
    assert redis is not None
    assert (redis.type, redis.memory, redis.memory_bytes, redis.num_instances) == (
        ProcType.WORKER,
        "128M",
        128 * 1024**2,
        1,
    )
    assert redis.dns_search == ("hello.redis.resource.lain",)
    assert redis.pod_group_name(config.appname) == "resource.redis.hello.worker.redis"


def test_jinja_text_outside_a_resource_template_is_refused() -> None:
    text = data_text("redis_resource.yaml").replace("apptype: resource\n", "")
    found = problems_of(text)
    assert [p.split(":")[0] for p in found] == ["procs.redis.num_instances", "procs.redis.memory"]


def test_mountpoint_example_of_section_5_4() -> None:
    web = one_proc("web", {"mountpoint": ["/web", "a.foo", "c.com/y/z"]})
    assert web.mountpoints == (
        "a.foo",
        "c.com/y/z",
        "hello.lain.local",
        "hello.lain",
        "hello.lain.local/web",
        "hello.lain/web",
    )


def test_console_web_proc_with_relative_mountpoint_and_secret_files() -> None:
    proc = one_proc(
        "web.console",
        {
            "mountpoint": ["/api"],
            "secret_files": ["config"],
            "secret_files_bypass": True,
            "logs": ["console_log", "console_op"],
        },
        appname="console",
    )
    assert proc.mountpoints == ("console.lain.local/api", "console.lain/api")
    assert proc.secret_files == ("/lain/app/config",)
    assert proc.secret_files_bypass is True
    assert proc.logs == ("console_log", "console_op")
