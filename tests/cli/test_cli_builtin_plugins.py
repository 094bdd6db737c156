"""The CLI with the built-in audit, policy and integrity plugins, enabled by REMOTE_STORE_TRANSFER_CONFIG."""

from __future__ import annotations

import json
import textwrap

import pytest

PREFIX = "remote-store-transfer: error: "


@pytest.fixture
def plugin_config(tmp_path, registry):
    """A plugin config: audit to a file, integrity verifying, policy with max_size and a read-only store."""
    config = tmp_path / "plugins.toml"
    audit = tmp_path / "audit.jsonl"
    config.write_text(
        textwrap.dedent(
            f"""\
            [plugins.audit]
            path = {json.dumps(str(audit))}

            [plugins.integrity]
            algorithm = "sha256"
            verify = true

            [plugins.policy]
            max_size = 1_000_000
            read_only = [{json.dumps(f"local:{registry.local_root / 'frozen'}/*")}]
            """
        )
    )
    return {"REMOTE_STORE_TRANSFER_CONFIG": str(config)}, audit


def test_plugins_lists_the_enabled_builtins(cli, plugin_config):
    env, _ = plugin_config
    rows = {row["name"]: row for row in json.loads(cli("plugins", "--json", env=env).stdout)}
    for name in ("audit", "integrity", "policy"):
        assert rows[name]["kind"] == "built-in"
        assert rows[name]["status"] == "active"


def test_transfers_are_audited_and_the_chain_verifies(cli_stores, registry, plugin_config):
    env, audit = plugin_config
    (cli_stores.cwd / "a.bin").write_bytes(b"a" * 5000)
    assert cli_stores("upload", "a.bin", "local:a.bin", env=env).returncode == 0
    assert cli_stores("copy", "local:a.bin", "s3:a.bin", env=env).returncode == 0
    assert cli_stores("download", "s3:a.bin", "b.bin", env=env).returncode == 0
    assert cli_stores("download", "s3:missing", "c.bin", env=env).returncode == 3

    result = cli_stores("audit", "verify", str(audit))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{audit}: intact, 4 records\n"

    as_json = json.loads(cli_stores("audit", "verify", str(audit), "--json").stdout)
    assert as_json == {"file": str(audit), "ok": True, "records": 4, "first_bad": None, "reason": as_json["reason"]}


def test_a_tampered_audit_log_fails_at_the_first_bad_record(cli_stores, registry, plugin_config):
    env, audit = plugin_config
    (cli_stores.cwd / "a.bin").write_bytes(b"a" * 5000)
    for name in ("x", "y", "z"):
        assert cli_stores("upload", "a.bin", f"local:{name}.bin", env=env).returncode == 0
    lines = audit.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    lines[1] = lines[1].replace(b'"bytes":5000', b'"bytes":4000')
    audit.write_bytes(b"".join(lines))

    result = cli_stores("audit", "verify", str(audit))
    assert result.returncode == 6
    assert result.stdout == ""
    assert result.stderr.startswith(f"{PREFIX}audit verify {audit}: record 2 of 3: ")
    assert len(result.stderr.splitlines()) == 1
    as_json = json.loads(cli_stores("audit", "verify", str(audit), "--json").stdout)
    assert as_json["ok"] is False
    assert as_json["first_bad"] == 2


def test_audit_verify_of_a_missing_file_is_not_found(cli):
    result = cli("audit", "verify", "nope.jsonl")
    assert result.returncode == 3
    assert result.stderr.startswith(f"{PREFIX}audit verify nope.jsonl: No such file or directory")


def test_audit_verify_with_a_key(cli_stores, tmp_path, registry):
    audit = tmp_path / "keyed.jsonl"
    config = tmp_path / "keyed.toml"
    config.write_text(f'[plugins.audit]\npath = {json.dumps(str(audit))}\nkey_env = "AUDIT_KEY"\n')
    env = {"REMOTE_STORE_TRANSFER_CONFIG": str(config), "AUDIT_KEY": "s3cret"}
    (cli_stores.cwd / "a").write_bytes(b"a")
    assert cli_stores("upload", "a", "local:a", env=env).returncode == 0

    assert cli_stores("audit", "verify", str(audit), "--key-env", "AUDIT_KEY", env=env).returncode == 0
    wrong = cli_stores("audit", "verify", str(audit), "--key-env", "AUDIT_KEY", env={"AUDIT_KEY": "guess"})
    assert wrong.returncode == 6
    assert "record 1 of 1" in wrong.stderr
    unset = cli_stores("audit", "verify", str(audit), "--key-env", "NO_SUCH_VAR")
    assert unset.returncode == 2
    assert "NO_SUCH_VAR is not set" in unset.stderr


def test_policy_denial_exits_5_and_moves_nothing(cli_stores, registry, plugin_config):
    env, audit = plugin_config
    (cli_stores.cwd / "big.bin").write_bytes(b"b" * 1_000_001)
    result = cli_stores("upload", "big.bin", "s3:big.bin", env=env)
    assert result.returncode == 5
    assert result.stderr == (
        f"{PREFIX}upload {cli_stores.cwd / 'big.bin'} -> s3:big.bin: denied by policy rule 'max_size': "
        "size 1000001 bytes exceeds the limit of 1000000 bytes\n"
    )
    record = json.loads(audit.read_text())
    assert record["outcome"] == "failure"
    assert record["error"]["type"] == "TransferDenied"
    assert record["bytes"] == 0


def test_read_only_store_denies_a_copy(cli_stores, registry, plugin_config):
    env, _ = plugin_config
    (registry.local_root / "a.bin").write_bytes(b"a")
    result = cli_stores("copy", "local:a.bin", "local:frozen/a.bin", "--json", env=env)
    assert result.returncode == 5
    assert "denied by policy rule 'read_only'" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 5
    assert not (registry.local_root / "frozen" / "a.bin").exists()


def test_integrity_failure_exits_6(cli_stores, registry, plugin_env):
    (registry.local_root / "a.bin").write_bytes(b"a" * 100)
    result = cli_stores("download", "local:a.bin", "a.bin", env={**plugin_env, "RST_TEST_REJECT": "1"})
    assert result.returncode == 6
    assert result.stderr.startswith(
        f"{PREFIX}download local:a.bin -> {cli_stores.cwd / 'a.bin'}: integrity check failed"
    )


def test_a_bad_plugin_config_is_a_usage_error(cli, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[plugins.audit]\nnot_a_key = 1\n")
    result = cli("plugins", env={"REMOTE_STORE_TRANSFER_CONFIG": str(config)})
    assert result.returncode == 2
    assert result.stderr.startswith(f"{PREFIX}plugins: ")
    assert "plugins.audit.not_a_key" in result.stderr


def test_sync_delete_into_a_read_only_s3_store_exits_5_deletes_nothing_and_is_audited(cli_stores, registry, tmp_path):
    """read_only holds for --delete too; every deletion, refused or done, has its record; the log verifies."""
    audit = tmp_path / "audit.jsonl"
    audit_only = tmp_path / "audit.toml"
    audit_only.write_text(f"[plugins.audit]\npath = {json.dumps(str(audit))}\n")
    guarded = tmp_path / "guarded.toml"
    frozen = f"s3:cli-tests/{registry.s3_prefix}/frozen/*"
    guarded.write_text(f"{audit_only.read_text()}\n[plugins.policy]\nread_only = [{json.dumps(frozen)}]\n")
    src = cli_stores.cwd / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"alpha")
    assert cli_stores("sync", "src", "s3:frozen", env={"REMOTE_STORE_TRANSFER_CONFIG": str(audit_only)}).returncode == 0
    for name in ("stale.txt", "sub/stale.txt"):
        registry.s3_put(f"frozen/{name}", b"extra")

    refused = cli_stores(
        "sync",
        "src",
        "s3:frozen",
        "--delete",
        "--max-delete",
        "none",
        env={"REMOTE_STORE_TRANSFER_CONFIG": str(guarded)},
    )

    assert refused.returncode == 5, refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 2, refused.stderr
    assert all("denied by policy rule 'read_only'" in line for line in lines)
    keys = {key.removeprefix(f"{registry.s3_prefix}/") for key in registry.s3_keys()}
    assert keys == {"frozen/a.txt", "frozen/stale.txt", "frozen/sub/stale.txt"}

    done = cli_stores(
        "sync",
        "src",
        "s3:frozen",
        "--delete",
        "--max-delete",
        "none",
        env={"REMOTE_STORE_TRANSFER_CONFIG": str(audit_only)},
    )
    assert done.returncode == 0, done.stderr
    assert {key.removeprefix(f"{registry.s3_prefix}/") for key in registry.s3_keys()} == {"frozen/a.txt"}

    records = [json.loads(line) for line in audit.read_text().splitlines()]
    deletions = [(r["target"]["path"], r["outcome"]) for r in records if r.get("operation") == "delete"]
    assert sorted(deletions) == sorted(
        [(f"frozen/{name}", outcome) for name in ("stale.txt", "sub/stale.txt") for outcome in ("failure", "success")]
    )
    batches = [r for r in records if r.get("kind") == "batch"]
    assert [b["counts"]["deleted"] for b in batches] == [0, 0, 2]
    assert [len(b["files"]) for b in batches] == [1, 2, 2]  # the first sync's upload; each run's two deletions
    verified = cli_stores("audit", "verify", str(audit))
    assert verified.returncode == 0, verified.stderr
