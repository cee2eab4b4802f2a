from __future__ import annotations

from pathlib import Path

import pytest

from backends.local import LocalScheduler, LogRetention
from server.scheduler import make_scheduler
from server.settings import SettingsError, load_settings


def test_defaults_use_sqlite_in_the_data_dir_and_the_local_backend() -> None:
    settings = load_settings({})
    assert settings.backend == "local"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.data_dir == Path.cwd() / ".lain-console"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("/.lain-console/lain-console.db")


def test_environment_overrides_every_setting(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LAIN_CONSOLE_DATA_DIR": str(tmp_path),
            "LAIN_CONSOLE_DATABASE_URL": "postgresql+asyncpg://u@db/x",
            "LAIN_CONSOLE_BACKEND": "nomad",
            "LAIN_CONSOLE_HOST": "0.0.0.0",
            "LAIN_CONSOLE_PORT": "9000",
            "LAIN_CONSOLE_LOG_LEVEL": "debug",
            "LAIN_CONSOLE_LOG_FORMAT": "json",
            "LAIN_CONSOLE_GRAPHIQL": "off",
        }
    )
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql+asyncpg://u@db/x"
    assert settings.backend == "nomad"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert settings.graphiql is False


def test_a_relative_data_dir_is_made_absolute_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"LAIN_CONSOLE_DATA_DIR": "state/../data"})
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'lain-console.db'}"


def test_notify_networks_are_a_comma_separated_list() -> None:
    settings = load_settings(
        {"LAIN_CONSOLE_NOTIFY_ALLOW_NETWORKS": "10.0.0.0/8, 192.0.2.7,fd00::/8"}
    )
    assert [str(network) for network in settings.notify_allow_networks] == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "fd00::/8",
    ]


def test_metrics_are_on_open_to_no_network_and_without_app_labels_unless_set() -> None:
    default = load_settings({})
    assert (default.metrics, default.metrics_allow_networks, default.metrics_app_labels) == (
        True,
        (),
        False,
    )
    settings = load_settings(
        {
            "LAIN_CONSOLE_METRICS": "false",
            "LAIN_CONSOLE_METRICS_ALLOW_NETWORKS": "10.0.0.0/8, 192.0.2.7",
            "LAIN_CONSOLE_METRICS_APP_LABELS": "true",
        }
    )
    assert not settings.metrics
    assert settings.metrics_app_labels
    assert [str(n) for n in settings.metrics_allow_networks] == ["10.0.0.0/8", "192.0.2.7/32"]


def test_app_uids_are_a_range_with_both_ends_included() -> None:
    settings = load_settings({"LAIN_CONSOLE_LOCAL_APP_UIDS": "200000-200009"})
    assert settings.local_app_uids == range(200000, 200010)


def test_instance_log_settings_reach_the_local_scheduler(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LAIN_CONSOLE_DATA_DIR": str(tmp_path),
            "LAIN_CONSOLE_INSTANCE_LOG_MAX_BYTES": "65536",
            "LAIN_CONSOLE_INSTANCE_LOG_FILES": "5",
            "LAIN_CONSOLE_INSTANCE_LOG_RETENTION_DAYS": "2",
            "LAIN_CONSOLE_INSTANCE_LOG_RETENTION_BYTES": "2097152",
            "LAIN_CONSOLE_LOG_FOLLOW_BUFFER_LINES": "500",
        }
    )
    defaults = load_settings({})
    assert (defaults.instance_log_max_bytes, defaults.instance_log_files) == (10 * 1024**2, 3)
    scheduler = make_scheduler(settings)
    assert isinstance(scheduler, LocalScheduler)
    pump = scheduler._logs
    assert (pump._max_bytes, pump._files) == (65536, 5)
    assert pump._retention == LogRetention(max_age_seconds=2 * 86400, max_total_bytes=2097152)
    assert pump.fanout._queue_lines == 500


def test_database_url_defaults_beside_a_custom_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"LAIN_CONSOLE_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'lain-console.db'}"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LAIN_CONSOLE_PORT", "eighty", "LAIN_CONSOLE_PORT must be an integer, got 'eighty'"),
        ("LAIN_CONSOLE_PORT", "70000", "LAIN_CONSOLE_PORT must be between 1 and 65535"),
        ("LAIN_CONSOLE_BACKEND", "k8s", "LAIN_CONSOLE_BACKEND must be one of local, nomad"),
        ("LAIN_CONSOLE_LOG_FORMAT", "xml", "LAIN_CONSOLE_LOG_FORMAT must be one of json, text"),
        ("LAIN_CONSOLE_GRAPHIQL", "maybe", "LAIN_CONSOLE_GRAPHIQL must be true or false"),
        ("LAIN_CONSOLE_LOCAL_APP_UIDS", "0-100", "LAIN_CONSOLE_LOCAL_APP_UIDS must be a range"),
        ("LAIN_CONSOLE_LOCAL_APP_UIDS", "9000", "LAIN_CONSOLE_LOCAL_APP_UIDS must be a range"),
        ("LAIN_CONSOLE_LOCAL_APP_UIDS", "2000-1000", "LAIN_CONSOLE_LOCAL_APP_UIDS must be a"),
        ("LAIN_CONSOLE_NOTIFY_ALLOW_NETWORKS", "10.0.0.0/33", "LAIN_CONSOLE_NOTIFY_ALLOW_NET"),
        ("LAIN_CONSOLE_METRICS_ALLOW_NETWORKS", "scraper", "LAIN_CONSOLE_METRICS_ALLOW_NET"),
        ("LAIN_CONSOLE_METRICS", "maybe", "LAIN_CONSOLE_METRICS must be true or false"),
        ("LAIN_CONSOLE_MAX_CONNECTIONS", "0", "LAIN_CONSOLE_MAX_CONNECTIONS must be between"),
        ("LAIN_CONSOLE_HEADER_TIMEOUT", "0", "LAIN_CONSOLE_HEADER_TIMEOUT must be between"),
        (
            "LAIN_CONSOLE_TIMEZONE",
            "Asia/Shanghai; rm -rf",
            "LAIN_CONSOLE_TIMEZONE must be a TZ value such as Asia/Shanghai or UTC, got "
            "'Asia/Shanghai; rm -rf'",
        ),
        (
            "LAIN_CONSOLE_SSO_URL",
            "sso.lain.local",
            "LAIN_CONSOLE_SSO_URL must be an http(s) URL, got 'sso.lain.local'",
        ),
        (
            "LAIN_CONSOLE_SSO_URL",
            "http://sso.lain.local",
            "LAIN_CONSOLE_SSO_CLIENT_ID must be set when LAIN_CONSOLE_SSO_URL is",
        ),
        (
            "LAIN_CONSOLE_FORWARDED_ALLOW_IPS",
            "10.0.0.1, proxy.internal",
            "LAIN_CONSOLE_FORWARDED_ALLOW_IPS must list IP addresses or networks (or *), "
            "got 'proxy.internal'",
        ),
        (
            "LAIN_CONSOLE_SUBSCRIPTION_RECHECK_SECONDS",
            "60",
            "LAIN_CONSOLE_SUBSCRIPTION_RECHECK_SECONDS must be between 0.05 and 30.0",
        ),
        (
            "LAIN_CONSOLE_SUBSCRIPTION_RECHECK_SECONDS",
            "soon",
            "LAIN_CONSOLE_SUBSCRIPTION_RECHECK_SECONDS must be a number, got 'soon'",
        ),
        (
            "LAIN_CONSOLE_MIN_HEALTHY_TIME",
            "-1",
            "LAIN_CONSOLE_MIN_HEALTHY_TIME must be between 0 and 3600",
        ),
        ("LAIN_CONSOLE_ROLLOUT_TIMEOUT", "0", "LAIN_CONSOLE_ROLLOUT_TIMEOUT must be between 1"),
        (
            "LAIN_CONSOLE_INSTANCE_LOG_FILES",
            "0",
            "LAIN_CONSOLE_INSTANCE_LOG_FILES must be between 1 and 100, got 0",
        ),
        (
            "LAIN_CONSOLE_LOG_FOLLOW_BUFFER_LINES",
            "many",
            "LAIN_CONSOLE_LOG_FOLLOW_BUFFER_LINES must be an integer, got 'many'",
        ),
        (
            "LAIN_CONSOLE_DATABASE_URL",
            "mysql://root:secret@db/x",
            "LAIN_CONSOLE_DATABASE_URL must start with sqlite+aiosqlite:// or "
            "postgresql+asyncpg://, got 'mysql://***@db/x'",
        ),
    ],
)
def test_bad_values_name_the_variable_and_the_rule(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({name: value})
    assert str(raised.value).startswith(message)
    assert "secret" not in str(raised.value)


def test_instance_time_zone_is_lains_unless_set() -> None:
    assert load_settings({}).timezone == "Asia/Shanghai"
    assert load_settings({"LAIN_CONSOLE_TIMEZONE": "UTC"}).timezone == "UTC"
    assert load_settings({"LAIN_CONSOLE_TIMEZONE": "<+08>-8"}).timezone == "<+08>-8"


def test_sso_defaults_are_lains_for_the_domain() -> None:
    settings = load_settings({"LAIN_CONSOLE_DOMAIN": "example.com"})
    assert settings.sso_url is None
    assert settings.sso_redirect_uri == "http://console.example.com/api/v1/authorize/"
    assert settings.auth_complete_url == "http://archon.example.com/authorize/complete"


def test_security_settings_default_to_trusting_no_proxy() -> None:
    settings = load_settings({})
    assert settings.forwarded_allow_ips == ()
    assert settings.subscription_recheck_seconds == 30.0
    assert settings.auth_failures_per_minute == 30
    proxied = load_settings(
        {"LAIN_CONSOLE_FORWARDED_ALLOW_IPS": " 10.0.0.0/8, ::1 ,*", "LAIN_CONSOLE_AUTH": "on"}
    )
    assert proxied.forwarded_allow_ips == ("10.0.0.0/8", "::1", "*")


def test_rollouts_wait_3_s_of_health_and_give_up_after_60_s_unless_set() -> None:
    defaults = load_settings({})
    assert (defaults.min_healthy_time, defaults.rollout_timeout) == (3, 60)
    settings = load_settings(
        {"LAIN_CONSOLE_MIN_HEALTHY_TIME": "10", "LAIN_CONSOLE_ROLLOUT_TIMEOUT": "300"}
    )
    assert (settings.min_healthy_time, settings.rollout_timeout) == (10, 300)


def test_local_health_probes_run_10_s_apart_unless_set() -> None:
    assert load_settings({}).local_health_interval == 10.0
    settings = load_settings({"LAIN_CONSOLE_LOCAL_HEALTH_INTERVAL": "2.5"})
    assert settings.local_health_interval == 2.5
    scheduler = make_scheduler(settings)
    assert isinstance(scheduler, LocalScheduler)
    assert scheduler._probes.interval == 2.5
    with pytest.raises(SettingsError, match="LAIN_CONSOLE_LOCAL_HEALTH_INTERVAL"):
        load_settings({"LAIN_CONSOLE_LOCAL_HEALTH_INTERVAL": "0"})
