"""publish, deploy (--wait), apps, app, releases, rollback and undeploy against a real
console running real processes on the local backend."""

from __future__ import annotations

from pathlib import Path

from tests.client.conftest import TICKER, Cli, eventually, lain_yaml
from tests.processes import processes_in
from tests.releases import V1, V2


def test_publish_registers_the_app_and_deploy_wait_shows_instances_coming_up(
    cli: Cli, tmp_path: Path
) -> None:
    cli.publish(tmp_path, TICKER, V1)
    cli.publish(tmp_path, TICKER, V2)

    releases = cli.json("releases", "hello")
    assert [r["metaVersion"] for r in releases] == [V2, V1]  # newest first
    assert not any(r["running"] for r in releases)

    done = cli.ok("deploy", "hello", "--release", V1, "--wait")
    assert f"worker.1 RUNNING ({V1})" in done.stderr  # progress, as the instance came up
    assert f"hello runs {V1}" in done.stderr
    assert "worker.1  RUNNING" in done.stdout  # the app's table
    assert len(processes_in(cli.console.data_dir)) == 1

    (listed,) = cli.json("apps")
    assert (listed["name"], listed["status"], listed["health"]) == ("hello", "DEPLOYED", "HEALTHY")
    app = cli.json("app", "hello")
    assert app["metaVersion"] == V1
    (worker,) = app["procs"]
    assert (worker["health"], worker["runningReleases"]) == ("HEALTHY", [V1])
    assert [(i["number"], i["status"], i["release"]) for i in worker["instances"]] == [
        (1, "RUNNING", V1)
    ]
    assert [r["running"] for r in cli.json("releases", "hello")] == [False, True]
    human = cli.ok("releases", "hello").stdout
    assert human.splitlines()[0].split() == ["RELEASE", "CREATED", "IMAGE"]


def test_deploy_moves_a_deployed_app_and_rollback_goes_to_the_release_before(
    cli: Cli, tmp_path: Path
) -> None:
    cli.publish(tmp_path, TICKER, V1)
    cli.publish(tmp_path, TICKER, V2)
    cli.ok("deploy", "hello", "--wait")  # the newest by default
    assert cli.json("app", "hello")["metaVersion"] == V2

    done = cli.ok("rollback", "hello", "--wait")
    assert f"hello runs {V1}" in done.stderr
    assert {i["release"] for i in cli.instances()} == {V1}

    nothing_older = cli.run("rollback", "hello")
    assert nothing_older.returncode == 4
    assert nothing_older.stderr == (
        f"error: CONFLICT: hello: no release before {V1} to roll back to\n"
    )

    cli.ok("rollback", "hello", "--to", V2, "--wait")
    assert {i["release"] for i in cli.instances()} == {V2}


def test_deploy_wait_fails_when_the_proc_cannot_come_up(cli: Cli, tmp_path: Path) -> None:
    cli.publish(tmp_path, lain_yaml("import sys; sys.exit(3)"))

    done = cli.run("deploy", "hello", "--wait", "--timeout", "60")

    assert done.returncode == 7, (done.stdout, done.stderr)
    assert done.stderr.splitlines()[-1].startswith("error: ROLLOUT_STOPPED: worker: ")


def test_undeploy_stops_every_process(cli: Cli, tmp_path: Path) -> None:
    cli.publish(tmp_path, TICKER)
    cli.ok("deploy", "hello", "--wait")
    assert processes_in(cli.console.data_dir)

    cli.ok("undeploy", "hello")

    eventually(lambda: not processes_in(cli.console.data_dir))
    assert cli.json("app", "hello")["status"] == "UNDEPLOYED"
    assert cli.json("apps") == []


def test_errors_are_one_line_with_a_status_per_class(cli: Cli, tmp_path: Path) -> None:
    missing = cli.run("app", "nope")
    assert (missing.returncode, missing.stderr) == (
        3,
        "error: NOT_FOUND: app 'nope' does not exist\n",
    )
    assert missing.stdout == ""

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("appname: hello\nworker: [not, a, mapping]\n")
    invalid = cli.run("publish", "hello", "--meta-version", V1, "--lain-yaml", str(bad_yaml))
    assert invalid.returncode == 2
    # The console's message spans lines; the client's error is one.
    assert invalid.stderr.splitlines()[-1] == (
        "error: INVALID: lainYaml: invalid lain.yaml: worker: must be a mapping, not a list"
    )

    unreadable = cli.run("publish", "hello", "--meta-version", V1, "--lain-yaml", "/nonexistent")
    assert unreadable.returncode == 2
    assert unreadable.stderr.startswith("error: INVALID: --lain-yaml: cannot read /nonexistent")

    cli.console.stop()
    down = cli.run("apps")
    assert down.returncode == 6
    assert down.stderr.startswith(f"error: UNREACHABLE: cannot reach {cli.console.url}")


def test_human_tables_keep_whole_release_ids_at_80_columns(cli: Cli, tmp_path: Path) -> None:
    cli.publish(tmp_path, TICKER, V1)
    cli.ok("deploy", "hello", "--wait")
    for verb in ("releases", "apps", "app"):
        screen = cli.run(verb, *(["hello"] if verb != "apps" else []), COLUMNS="80").stdout
        assert "…" not in screen, screen
        assert max(len(line) for line in screen.splitlines()) <= 80
        assert V1 in screen, screen  # whole, on one line: people copy it
