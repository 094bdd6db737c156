"""``-`` as a path: ``upload - NAME:PATH`` reads stdin, ``download NAME:PATH -`` writes stdout (real pipes)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap

import pytest

SIZES = [0, 1, 3 * 1024 * 1024 + 17]  # empty, one byte, several 1 MiB chunks and a tail


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("store", ["local", "s3"])
def test_upload_dash_streams_stdin_into_the_store(cli_stores, registry, store, size):
    data = os.urandom(size)
    result = cli_stores.piped("upload", "-", f"{store}:in/piped.bin", data=data)
    assert result.returncode == 0, result.stderr
    written = (
        (registry.local_root / "in/piped.bin").read_bytes() if store == "local" else registry.s3_get("in/piped.bin")
    )
    assert sha(written) == sha(data)
    assert result.stdout.decode().startswith(f"upload stdin -> {store}:in/piped.bin: ")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("store", ["local", "s3"])
def test_download_dash_writes_only_the_bytes_to_stdout(cli_stores, registry, store, size):
    data = os.urandom(size)
    if store == "local":
        (registry.local_root / "out").mkdir()
        (registry.local_root / "out/file.bin").write_bytes(data)
    else:
        registry.s3_put("out/file.bin", data)
    # -v and --json too: log records and the JSON object go to stderr, never into the data
    env = {"REMOTE_STORE_TRANSFER_CONFIG": str(_logging_config(cli_stores.cwd))}
    result = cli_stores.piped("-v", "download", f"{store}:out/file.bin", "-", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert sha(result.stdout) == sha(data)
    stderr = result.stderr.decode()
    objects = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert objects == [objects[0]]
    assert objects[0]["ok"] is True
    assert objects[0]["destination"] == "stdout"
    assert objects[0]["bytes"] == size
    assert "transfer" in stderr and "succeeded" in stderr  # the logging plugin's end record
    assert not list(cli_stores.cwd.glob("-*")), "no local file named '-' is written"


def test_a_pipe_through_two_commands_keeps_the_bytes(cli_stores, registry):
    data = os.urandom(2 * 1024 * 1024 + 5)
    registry.s3_put("chain/source.bin", data)
    down = subprocess.Popen(
        cli_stores.command("download", "s3:chain/source.bin", "-"),
        cwd=cli_stores.cwd,
        env=cli_stores.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        up = subprocess.run(
            cli_stores.command("upload", "-", "local:chain/copy.bin"),
            cwd=cli_stores.cwd,
            env=cli_stores.environment(),
            stdin=down.stdout,
            capture_output=True,
            timeout=120,
            check=False,
        )
    finally:
        assert down.stdout is not None
        down.stdout.close()
        assert down.wait(timeout=120) == 0
    assert up.returncode == 0, up.stderr
    assert sha((registry.local_root / "chain/copy.bin").read_bytes()) == sha(data)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("upload", "-r", "-", "local:x"), "upload -r: '-' (stdin or stdout) is one file"),
        (("download", "-r", "local:x", "-"), "download -r: '-' (stdin or stdout) is one file"),
        (("upload", "-", "local:x", "--dry-run"), "--dry-run: for folders only"),
        (("sync", "-", "local:x"), "sync: '-' (stdin or stdout) is one file"),
        (("sync", "local:x", "-"), "sync: '-' (stdin or stdout) is one file"),
        (("upload", "-", "local:dir/"), "upload: stdin has no file name"),
        (("copy", "-", "local:x"), "use upload - NAME:PATH or download NAME:PATH -"),
    ],
)
def test_dash_where_it_cannot_be_one_stream_is_a_usage_error(cli_stores, registry, args, message):
    result = cli_stores.piped(*args, data=b"data")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr.decode()
    assert not any(registry.local_root.iterdir())


def test_a_local_file_named_dash_is_written_dot_slash_dash(cli_stores, registry):
    (cli_stores.cwd / "-").write_bytes(b"a file called -")
    result = cli_stores.piped("upload", "./-", "local:named/", data=b"not this")
    assert result.returncode == 0, result.stderr
    assert (registry.local_root / "named/-").read_bytes() == b"a file called -"


def test_a_denied_upload_from_stdin_exits_5(cli_stores, registry, tmp_path):
    config = tmp_path / "policy.toml"
    config.write_text("[plugins.policy]\nmax_size = 1000\n")
    result = cli_stores.piped(
        "upload",
        "-",
        "local:big.bin",
        data=os.urandom(5000),
        env={"REMOTE_STORE_TRANSFER_CONFIG": str(config)},
    )
    # the size of stdin is not known beforehand: the policy stops the bytes as they pass its limit
    assert result.returncode == 5, result.stderr
    assert "upload stdin -> local:big.bin: denied by policy rule 'max_size'" in result.stderr.decode()
    assert not (registry.local_root / "big.bin").exists()


def test_the_reader_going_away_is_a_destination_error(cli_stores, registry):
    registry.s3_put("big.bin", os.urandom(4 * 1024 * 1024))
    down = subprocess.Popen(
        cli_stores.command("download", "s3:big.bin", "-"),
        cwd=cli_stores.cwd,
        env=cli_stores.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert down.stdout is not None and down.stderr is not None
    assert len(down.stdout.read(10)) == 10
    down.stdout.close()  # like `| head -c 10`
    stderr = down.stderr.read().decode()
    assert down.wait(timeout=120) == 7, stderr
    assert "download stdout: cannot write the destination stdout: BrokenPipeError" in stderr
    assert "Exception ignored" not in stderr


def _logging_config(folder) -> os.PathLike[str]:
    path = folder / "logging.toml"
    path.write_text(textwrap.dedent("[plugins.logging]\n"))
    return path
