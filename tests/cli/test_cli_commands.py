"""help, plugins and demo as subprocesses."""

from __future__ import annotations

import json


def test_help_documents_the_exit_codes(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in ("upload", "download", "copy", "plugins", "audit", "demo"):
        assert f"  {command} " in result.stdout
    table = [line.strip() for line in result.stdout.split("Exit codes:\n", 1)[1].splitlines()]
    assert [line.split()[0] for line in table] == ["0", "1", "2", "3", "4", "5", "6", "7", "130"]
    assert "4    already exists (the destination; give --overwrite)" in table
    assert table[7].startswith("7    the destination cannot be written")


def test_upload_help_lists_the_options(cli):
    result = cli("upload", "--help")
    assert result.returncode == 0
    for option in ("--overwrite", "--atomic", "--no-atomic", "--quiet", "--json", "--config", "--debug"):
        assert option in result.stdout


def test_plugins_lists_builtin_and_third_party(cli, plugin_env):
    result = cli("plugins", env=plugin_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "KIND", "STATUS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["progress"][1:] == ["remote-store-transfer", rows["progress"][2], "built-in", "active"]
    assert rows["throttle"] == ["throttle", "rst_cli_testplugin", "0.0.0", "third-party", "active"]


def test_plugins_json_shows_blocked_plugins(cli, plugin_env):
    env = {**plugin_env, "REMOTE_STORE_TRANSFER_BLOCK_PLUGINS": "throttle"}
    result = cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["throttle"] == {
        "name": "throttle",
        "distribution": None,
        "version": None,
        "kind": None,
        "status": "blocked",
    }
    assert rows["progress"]["status"] == "active"
    assert rows["progress"]["kind"] == "built-in"


def test_plugins_without_autoload_lists_only_builtins(cli, plugin_env):
    env = {**plugin_env, "REMOTE_STORE_TRANSFER_DISABLE_PLUGIN_AUTOLOAD": "1"}
    rows = json.loads(cli("plugins", "--json", env=env).stdout)
    assert {row["kind"] for row in rows} == {"built-in"}
    assert "throttle" not in {row["name"] for row in rows}


def test_demo_runs_without_any_configuration(cli):
    result = cli("demo", "--size", "3")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("demo: local store ")
    assert lines[1].endswith(": 3.0 MiB, sha256 " + lines[1].rsplit(" ", 1)[1])
    assert lines[2].startswith("upload ")
    assert " -> local:demo/sample.bin: 3.0 MiB in " in lines[2]
    assert lines[3].startswith("copy local:demo/sample.bin -> memory:archive/sample.bin: 3.0 MiB in ")
    assert lines[4].startswith("download memory:archive/sample.bin -> ")
    assert lines[5].startswith("ok: the downloaded copy has the sample's sha256 ")
    assert len(lines) == 6


def test_demo_json_prints_one_object_per_operation(cli):
    result = cli("demo", "--size", "1", "--json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["operation"] for o in objects] == ["upload", "copy", "download"]
    assert all(o["ok"] and o["bytes"] == 1024 * 1024 for o in objects)


def test_demo_is_seen_by_installed_plugins(cli, plugin_env):
    """The demo goes through the process-wide manager: a policy plugin can stop it (exit 5)."""
    result = cli("demo", "--size", "1", env={**plugin_env, "RST_TEST_DENY": "1"})
    assert result.returncode == 5
    assert result.stderr.startswith("remote-store-transfer: error: upload ")
    assert result.stderr.rstrip().endswith("denied by the test plugin")
