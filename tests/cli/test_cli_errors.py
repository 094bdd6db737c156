"""Error paths: one line on stderr naming the operation and path, and the documented exit codes."""

from __future__ import annotations

import json

import pytest

PREFIX = "remote-store-transfer: error: "


def error_line(result) -> str:
    """The single stderr line of a failed command."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0]


def test_upload_of_a_missing_local_file_is_not_found(cli_stores):
    result = cli_stores("upload", "nope.bin", "local:nope.bin")
    assert result.returncode == 3
    assert error_line(result) == f"{PREFIX}upload {cli_stores.cwd / 'nope.bin'}: No such file or directory: nope.bin"
    assert result.stdout == ""


@pytest.mark.parametrize("store", ["local", "s3"])
def test_download_of_a_missing_remote_file_is_not_found(cli_stores, store):
    result = cli_stores("download", f"{store}:missing/file.bin", "out.bin")
    assert result.returncode == 3, result.stderr
    assert error_line(result).startswith(f"{PREFIX}download {store}:missing/file.bin: ")
    assert not (cli_stores.cwd / "out.bin").exists()


@pytest.mark.parametrize("store", ["local", "s3"])
def test_copy_of_a_missing_file_is_not_found(cli_stores, store):
    result = cli_stores("copy", f"{store}:missing.bin", "local:x.bin", "--json")
    assert result.returncode == 3
    assert error_line(result).startswith(f"{PREFIX}copy {store}:missing.bin: ")
    obj = json.loads(result.stdout)
    assert obj["ok"] is False
    assert obj["exit_code"] == 3
    assert obj["bytes"] == 0
    assert obj["error"]


@pytest.mark.parametrize("store", ["local", "s3"])
def test_upload_onto_an_existing_file_is_already_exists(cli_stores, registry, store):
    (cli_stores.cwd / "a.txt").write_bytes(b"a")
    assert cli_stores("upload", "a.txt", f"{store}:a.txt").returncode == 0
    result = cli_stores("upload", "a.txt", f"{store}:a.txt")
    assert result.returncode == 4
    assert error_line(result).startswith(f"{PREFIX}upload {store}:a.txt: ")


def test_download_onto_an_existing_local_file_is_already_exists(cli_stores, registry):
    (registry.local_root / "a.txt").write_bytes(b"remote")
    (cli_stores.cwd / "a.txt").write_bytes(b"mine")
    result = cli_stores("download", "local:a.txt", "a.txt")
    assert result.returncode == 4
    assert error_line(result).startswith(f"{PREFIX}download {cli_stores.cwd / 'a.txt'}: ")
    assert (cli_stores.cwd / "a.txt").read_bytes() == b"mine"


def test_copy_onto_an_existing_file_is_already_exists(cli_stores, registry):
    (registry.local_root / "a.txt").write_bytes(b"a")
    (registry.local_root / "b.txt").write_bytes(b"b")
    result = cli_stores("copy", "local:a.txt", "local:b.txt")
    assert result.returncode == 4
    assert error_line(result).startswith(f"{PREFIX}copy local:b.txt: ")
    assert (registry.local_root / "b.txt").read_bytes() == b"b"


def test_unknown_store_name_lists_the_known_ones(cli_stores, registry):
    (cli_stores.cwd / "a").write_bytes(b"a")
    result = cli_stores("upload", "a", "nas:a")
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith(f"{PREFIX}upload nas:a: unknown store 'nas' in {registry.path}; ")
    assert line.endswith("known stores: local, mem, s3")


def test_store_location_without_a_registry_is_a_usage_error(cli):
    (cli.cwd / "a").write_bytes(b"a")
    result = cli("upload", "a", "s3:a")
    assert result.returncode == 2
    assert "--config" in error_line(result)
    assert "REMOTE_STORE_TRANSFER_STORES" in result.stderr


def test_missing_registry_file_is_a_usage_error(cli):
    result = cli("download", "s3:a", "a", "--config", "missing.toml")
    assert result.returncode == 2
    assert error_line(result) == f"{PREFIX}download s3:a: store registry missing.toml does not exist"


def test_invalid_registry_file_is_a_usage_error(cli):
    (cli.cwd / "bad.toml").write_text("[stores.x]\nbackend = 'nowhere'\n")
    result = cli("download", "x:a", "a", "--config", "bad.toml")
    assert result.returncode == 2
    assert "store registry bad.toml is invalid" in error_line(result)


@pytest.mark.parametrize(
    "args",
    [
        ["upload", "only-one-arg"],
        ["upload", "local:a", "local:b"],
        ["upload", "a", "b"],
        ["download", "a", "b"],
        ["download", "local:a", "mem:b"],
        ["copy", "a", "local:b"],
        ["upload", "--no-such-option", "a", "local:a"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(cli_stores, args):
    result = cli_stores(*args)
    assert result.returncode == 2
    assert "Error:" in result.stderr
    assert result.stdout == ""


def test_debug_prints_the_traceback_before_the_line(cli_stores):
    result = cli_stores("download", "local:missing", "out", "--debug")
    assert result.returncode == 3
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.splitlines()[-1].startswith(f"{PREFIX}download local:missing: ")


def test_permission_denied_by_a_plugin_exits_5(cli_stores, registry, plugin_env):
    (cli_stores.cwd / "a").write_bytes(b"a")
    result = cli_stores("upload", "a", "local:a", env={**plugin_env, "RST_TEST_DENY": "1"})
    assert result.returncode == 5
    assert error_line(result) == f"{PREFIX}upload {cli_stores.cwd / 'a'} -> local:a: denied by the test plugin"
    assert not (registry.local_root / "a").exists()


@pytest.mark.parametrize("command", ["download", "copy"])
def test_a_source_that_ends_early_exits_6_and_commits_nothing(cli_stores, registry, plugin_env, command):
    """The CLI asks the source store for the size, so a source cut short is a failure, not a shorter file."""
    source = registry.local_root / "big.bin"
    source.write_bytes(b"b" * (3 * 1024 * 1024))
    target = "copy.bin" if command == "download" else "local:copy.bin"
    cut = 1024 * 1024 + 5  # beyond the first chunk, whatever its size
    env = {**plugin_env, "RST_TEST_TRUNCATE": f"{source}:{cut}"}

    result = cli_stores(command, "local:big.bin", target, "--atomic", "--json", env=env)

    assert result.returncode == 6, result.stderr
    assert f"is incomplete: the source ended after {cut} of {3 * 1024 * 1024} bytes" in error_line(result)
    assert json.loads(result.stdout)["ok"] is False
    assert not (cli_stores.cwd / "copy.bin").exists()
    assert not (registry.local_root / "copy.bin").exists()
    assert sorted(p.name for p in registry.local_root.iterdir()) == ["big.bin"]


def test_capability_error_is_other_error_with_its_type(cli_stores, tmp_path):
    """An upload to an HTTP store (read-only) fails with exit 1 and names the error type."""
    config = tmp_path / "http.toml"
    config.write_text(
        '[backends.h]\ntype = "http"\noptions = { base_url = "http://127.0.0.1:9" }\n[stores.web]\nbackend = "h"\n'
    )
    (cli_stores.cwd / "a").write_bytes(b"a")
    result = cli_stores("upload", "a", "web:a", "--config", str(config))
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"{PREFIX}upload {cli_stores.cwd / 'a'} -> web:a: ")
    assert "CapabilityNotSupported" in line


def test_a_plugin_that_fails_to_import_is_reported_with_its_name(cli_stores, make_plugin_dist):
    site = make_plugin_dist("rst_broken", "broken", "raise RuntimeError('boom')\n")
    env = {"PYTHONPATH": str(site)}
    result = cli_stores("plugins", env=env)
    assert result.returncode == 1
    line = error_line(result)
    assert "plugin 'broken'" in line
    assert "REMOTE_STORE_TRANSFER_BLOCK_PLUGINS=broken" in line

    blocked = cli_stores("plugins", env={**env, "REMOTE_STORE_TRANSFER_BLOCK_PLUGINS": "broken"})
    assert blocked.returncode == 0, blocked.stderr
