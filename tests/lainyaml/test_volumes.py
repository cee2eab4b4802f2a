"""persistent_dirs/volumes, cloud_volumes, secret_files and logs."""

from __future__ import annotations

import pytest

from lainyaml import BackupEntry, BackupMode, CloudVolumes, CloudVolumeType, lain_based_path
from tests.lainyaml.support import one_proc, problems


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data", "/lain/app/data"),
        ("/data", "/data"),
        ("./a/../b/", "/lain/app/b"),
        ("../../../..", "/"),
        ("//x//y", "/x/y"),
        ("/lain/logs/", "/lain/logs"),
    ],
)
def test_lain_based_path_normalises_under_app_root(path: str, expected: str) -> None:
    assert lain_based_path(path) == expected


def test_persistent_dirs_are_normalised_and_end_with_logs() -> None:
    proc = one_proc("worker.x", {"persistent_dirs": ["data", "/var/x/", "data/../data"]})
    assert proc.persistent_dirs == ("/lain/app/data", "/var/x", "/lain/logs")
    assert proc.uses_persistent_storage


def test_volumes_is_the_other_name_of_persistent_dirs() -> None:
    assert one_proc("worker.x", {"volumes": ["/d"]}).persistent_dirs == ("/d", "/lain/logs")


def test_persistent_dirs_wins_over_volumes_unless_empty() -> None:
    both = {"persistent_dirs": ["/a"], "volumes": ["/b"]}
    assert one_proc("worker.x", both).persistent_dirs == ("/a", "/lain/logs")
    fallback = {"persistent_dirs": [], "volumes": ["/b"]}
    assert one_proc("worker.x", fallback).persistent_dirs == ("/b", "/lain/logs")


def test_lain_logs_is_listed_once_and_last() -> None:
    proc = one_proc("worker.x", {"volumes": ["/lain/logs", "/d"]})
    assert proc.persistent_dirs == ("/d", "/lain/logs")
    assert not one_proc("worker.x", {"volumes": ["/lain/logs"]}).uses_persistent_storage


@pytest.mark.parametrize(
    ("volume", "shown"),
    [
        ("/", "/"),
        ("/lain", "/lain"),
        ("/lain/app", "/lain/app"),
        (".", "/lain/app"),
        ("..", "/lain"),
        ("", "/lain/app"),
        ("/lain/app/x/..", "/lain/app"),
    ],
)
def test_forbidden_volumes_use_lain_message(volume: str, shown: str) -> None:
    assert problems({"worker.x": {"volumes": [volume]}}) == [
        f"procs.x.volumes[0]: invalid volume: abs volume {shown} should not in "
        "('/', '/lain', '/lain/app')"
    ]


def test_volume_backups_are_kept_only_with_a_schedule() -> None:
    proc = one_proc(
        "worker.x",
        {
            "volumes": [
                {
                    "data": {
                        "backup_full": {"schedule": "0 1 * * *"},
                        "backup_increment": {"expire": "1d"},
                    }
                },
                {"/plain": None},
                {"/other": {"comment": "ignored"}},
            ]
        },
    )
    assert proc.persistent_dirs == ("/lain/app/data", "/plain", "/other", "/lain/logs")
    assert proc.backups == (BackupEntry("data", BackupMode.FULL, "0 1 * * *"),)


def test_volume_item_shapes_are_checked() -> None:
    found = problems(
        {
            "worker.x": {
                "volumes": [
                    3,
                    {"/a": 1, "/b": 2},
                    {"/c": ["x"]},
                    {"/d": {"backup_full": {"schedule": 5, "when": "now"}}},
                ]
            }
        }
    )
    assert found == [
        "procs.x.volumes[0]: must be a path or a mapping of one path, not an integer",
        "procs.x.volumes[1]: a volume with settings must be a mapping of one path",
        "procs.x.volumes[2]./c: must be a mapping, not a list",
        "procs.x.volumes[3]./d.backup_full.schedule: must be a string, not an integer",
        "procs.x.volumes[3]./d.backup_full.when: unknown field; expected one of "
        "('schedule', 'expire', 'pre_run', 'post_run')",
    ]


def test_volumes_must_be_a_list() -> None:
    assert problems({"worker.x": {"persistent_dirs": "/data"}}) == [
        "procs.x.persistent_dirs: must be a list of paths, not a string"
    ]


def test_cloud_volumes_default_to_multi_with_normalised_dirs() -> None:
    proc = one_proc("worker.x", {"cloud_volumes": {"dirs": ["shared", "/abs/"]}})
    assert proc.cloud_volumes == CloudVolumes(CloudVolumeType.MULTI, ("/lain/app/shared", "/abs"))


def test_cloud_volumes_single_type_and_empty_forms() -> None:
    proc = one_proc("worker.x", {"cloud_volumes": {"type": "single", "dirs": ["/d"]}})
    assert proc.cloud_volumes == CloudVolumes(CloudVolumeType.SINGLE, ("/d",))
    assert one_proc("worker.x", {"cloud_volumes": {}}).cloud_volumes is None
    assert one_proc("worker.x", {"cloud_volumes": {"type": "multi"}}).cloud_volumes == (
        CloudVolumes(CloudVolumeType.MULTI, ())
    )


def test_cloud_volume_type_uses_lain_message() -> None:
    assert problems({"worker.x": {"cloud_volumes": {"type": "nfs", "dirs": []}}}) == [
        "procs.x.cloud_volumes.type: cloud volume type 'nfs' not supported, "
        "only multi and single are valid"
    ]


def test_cloud_volumes_shapes_are_checked() -> None:
    assert problems({"worker.x": {"cloud_volumes": ["/d"]}}) == [
        "procs.x.cloud_volumes: must be a mapping, not a list"
    ]
    assert problems({"worker.x": {"cloud_volumes": {"dirs": "/d", "size": 1}}}) == [
        "procs.x.cloud_volumes.size: unknown field; expected type or dirs",
        "procs.x.cloud_volumes.dirs: must be a list of strings, not a string",
    ]


def test_secret_files_are_absolute_and_normalised() -> None:
    proc = one_proc("worker.x", {"secret_files": ["config", "/etc/x", "a/../b", "config"]})
    assert proc.secret_files == ("/lain/app/config", "/etc/x", "/lain/app/b")


def test_secret_files_must_be_non_empty_strings() -> None:
    assert problems({"worker.x": {"secret_files": "config"}}) == [
        "procs.x.secret_files: must be a list of strings, not a string"
    ]
    assert problems({"worker.x": {"secret_files": [""]}}) == [
        "procs.x.secret_files[0]: must not be empty"
    ]


def test_logs_are_relative_and_deduplicated() -> None:
    proc = one_proc("worker.x", {"logs": ["a.log", "b.log", "a.log"]})
    assert proc.logs == ("a.log", "b.log")


def test_absolute_log_uses_lain_message() -> None:
    assert problems({"worker.x": {"logs": ["ok.log", "/var/log/x"]}}) == [
        "procs.x.logs[1]: Log in Logs section MUST be a relative path based on /lain/logs. "
        "Wrong path: /var/log/x"
    ]


def test_logs_must_be_a_list_of_strings() -> None:
    assert problems({"worker.x": {"logs": "app.log"}}) == [
        "procs.x.logs: must be a list of strings, not a string"
    ]
