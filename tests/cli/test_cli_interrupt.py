"""Ctrl-C (SIGINT) in the middle of a transfer: exit 130, and atomic (the default) leaves no partial file."""

from __future__ import annotations

import json

import pytest

SIZE = 64 * 1024 * 1024


def interrupt_after_first_chunk(cli, plugin_env, marker, *args):
    """:meth:`Cli.interrupted` with the throttling test plugin; ``(rc, stdout, stderr)``."""
    done = cli.interrupted(*args, marker=marker, env=plugin_env)
    return done.returncode, done.stdout, done.stderr


def check_interrupted(rc, stdout, stderr, what):
    assert rc == 130, stderr
    assert f"remote-store-transfer: interrupted: {what}" in stderr.splitlines()
    result = json.loads(stdout)
    assert result["ok"] is False
    assert result["error"] == "interrupted"
    assert result["exit_code"] == 130
    assert 0 < result["bytes"] < SIZE
    return result


@pytest.mark.parametrize("flag", ["--atomic", None, "--no-atomic"])
def test_ctrl_c_during_a_download(cli_stores, registry, plugin_env, tmp_path, flag):
    with open(registry.local_root / "big.bin", "wb") as fh:
        fh.truncate(SIZE)
    atomic = flag != "--no-atomic"
    args = ["download", "local:big.bin", "out.bin", "--json"] + ([flag] if flag else [])

    rc, stdout, stderr = interrupt_after_first_chunk(cli_stores, plugin_env, tmp_path / "marker", *args)

    result = check_interrupted(rc, stdout, stderr, f"download local:big.bin -> {cli_stores.cwd / 'out.bin'}")
    left = sorted(p.name for p in cli_stores.cwd.iterdir())
    if atomic:
        assert left == []  # neither out.bin nor its temp file
    else:
        assert left == ["out.bin"]  # with --no-atomic the partial file stays, as documented
        assert (cli_stores.cwd / "out.bin").stat().st_size <= result["bytes"]
        partial = str(cli_stores.cwd / "out.bin")
        assert result["partial"] == partial
        assert f"the partial file {partial} may be left behind" in stderr


@pytest.mark.parametrize("store", ["local", "s3"])
def test_ctrl_c_during_an_atomic_upload_leaves_nothing_in_the_store(cli_stores, registry, plugin_env, tmp_path, store):
    with open(cli_stores.cwd / "big.bin", "wb") as fh:
        fh.truncate(SIZE)
    args = ["upload", "big.bin", f"{store}:big.bin", "--atomic", "--json"]

    rc, stdout, stderr = interrupt_after_first_chunk(cli_stores, plugin_env, tmp_path / "marker", *args)

    check_interrupted(rc, stdout, stderr, f"upload {cli_stores.cwd / 'big.bin'} -> {store}:big.bin")
    if store == "local":
        assert list(registry.local_root.rglob("*")) == []
    else:
        assert registry.s3_keys() == []
