"""Stores nobody answers: the error names the store and its endpoint; ``--connect-timeout`` reaches the backends.

The endpoints are real sockets: a closed port (the connection is refused) and,
for the timeout, a listening socket whose accept queue is full (the kernel
drops the SYN, so the connect attempt runs into its timeout). Every run is a
subprocess with a timeout of its own: a test never hangs.
"""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from collections.abc import Iterator

import pytest

from remote_store_transfer.cli.stores import CONNECT_TIMEOUT, with_connect_timeout

PREFIX = "remote-store-transfer: error: "


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 nobody listens on: bound but never listening, so connections are refused.

    The socket stays bound for the whole test, so no server started meanwhile (by another test
    process on this machine) can take the port: a port bound and then closed could be reused, and
    the store would then reach that server instead of failing.

    The port's digits never hold "403" or "404": remote-store classifies an S3 error it does not
    recognise by its message (``remote_store._errors._classify_by_message``), and the message of a
    refused connection holds the endpoint URL, so a port such as 40312 read as PermissionDenied and
    one such as 34049 as NotFound. That was the cause of this file's rare failures.
    """
    held = []
    try:
        while True:
            sock = socket.socket()
            held.append(sock)  # kept bound until the test ends, so the next bind gets another port
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if "403" not in str(port) and "404" not in str(port):
                break
        yield port
    finally:
        for sock in held:
            sock.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts and whose accept queue is full: new connections time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def registry_for(tmp_path, port: int, extra_sftp: str = "") -> str:
    """Stores on *port*, each tried once: what is tested is the error's text, not the backends' retries."""
    path = tmp_path / f"unreachable-{port}.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [backends.s3]
            type = "s3"
            options = {{ bucket = "b", endpoint_url = "http://127.0.0.1:{port}", key = "k", secret = "s", \
region_name = "us-east-1" }}
            retry = {{ max_attempts = 1 }}

            [backends.sftp]
            type = "sftp"
            options = {{ host = "127.0.0.1", port = {port}, username = "u", password = "p", \
host_key_policy = "auto_add"{extra_sftp} }}
            retry = {{ max_attempts = 1 }}

            [stores.bucket]
            backend = "s3"

            [stores.box]
            backend = "sftp"
            """
        )
    )
    return str(path)


@pytest.mark.parametrize(
    ("args", "operation", "endpoint"),
    [
        (
            ("upload", "data.bin", "bucket:data.bin"),
            "upload {cwd}/data.bin -> bucket:data.bin",
            "store 'bucket' (s3 http://127.0.0.1:{port})",
        ),
        (
            ("download", "bucket:data.bin", "out.bin"),
            "download bucket:data.bin -> {cwd}/out.bin",
            "store 'bucket' (s3 http://127.0.0.1:{port})",
        ),
        (
            ("download", "bucket:data.bin", "-"),
            "download bucket:data.bin -> stdout",
            "store 'bucket' (s3 http://127.0.0.1:{port})",
        ),
        (
            ("upload", "data.bin", "box:data.bin"),
            "upload {cwd}/data.bin -> box:data.bin",
            "store 'box' (sftp 127.0.0.1:{port})",
        ),
        (
            ("download", "box:data.bin", "out.bin"),
            "download box:data.bin -> {cwd}/out.bin",
            "store 'box' (sftp 127.0.0.1:{port})",
        ),
        (
            ("copy", "box:data.bin", "bucket:data.bin"),
            "copy box:data.bin -> bucket:data.bin",
            "store 'box' (sftp 127.0.0.1:{port})",
        ),
    ],
)
def test_a_closed_port_fails_naming_the_operation_and_the_endpoint(
    cli, tmp_path, closed_port, args, operation, endpoint
):
    port = closed_port
    (cli.cwd / "data.bin").write_bytes(b"x" * 100)
    result = cli(*args, "--config", registry_for(tmp_path, port), "--connect-timeout", "1")
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    head = f"{PREFIX}{operation.format(cwd=cli.cwd)}: cannot reach {endpoint.format(port=port)} (connect timeout 1 s): "
    assert line.startswith(head + "BackendUnavailable: "), line
    assert not (cli.cwd / "out.bin").exists()


def test_a_tree_from_a_closed_port_names_the_endpoint_in_its_listing_error(cli, tmp_path, closed_port):
    port = closed_port
    result = cli("download", "-r", "bucket:photos", "photos", "--config", registry_for(tmp_path, port), "--json")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["ok"] is False
    endpoint = f"store 'bucket' (s3 http://127.0.0.1:{port})"
    assert f"{PREFIX}listing bucket:photos: cannot reach {endpoint} (connect timeout 10 s)" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="a full accept queue drops SYNs on Linux; elsewhere it may refuse")
def test_an_sftp_server_that_never_answers_times_out_with_the_endpoint_named(cli, tmp_path, silent_port):
    (cli.cwd / "data.bin").write_bytes(b"x")
    result = cli(
        "upload", "data.bin", "box:data.bin", "--config", registry_for(tmp_path, silent_port), "--connect-timeout", "1"
    )
    assert result.returncode == 1, result.stderr
    # paramiko's own message is only "timed out": the endpoint comes from the CLI
    assert result.stderr.strip().splitlines()[-1] == (
        f"{PREFIX}upload {cli.cwd}/data.bin -> box:data.bin: cannot reach store 'box' (sftp 127.0.0.1:{silent_port}) "
        "(connect timeout 1 s): BackendUnavailable: timed out"
    )


def test_the_connect_timeout_goes_to_s3_and_sftp_backends_that_set_none():
    raw = {
        "backends": {
            "s3": {"type": "s3", "options": {"bucket": "b", "client_options": {"client_kwargs": {"verify": False}}}},
            "s3own": {
                "type": "s3",
                "options": {"bucket": "b", "client_options": {"config_kwargs": {"connect_timeout": 3}}},
            },
            "sftp": {"type": "sftp", "options": {"host": "h"}},
            "sftpown": {"type": "sftp", "options": {"host": "h", "timeout": 30}},
            "disk": {"type": "local", "options": {"root": "/tmp"}},
        },
        "stores": {"x": {"backend": "s3"}},
    }
    got = with_connect_timeout(raw, 2.5)["backends"]
    assert got["s3"]["options"]["client_options"] == {
        "client_kwargs": {"verify": False},
        "config_kwargs": {"connect_timeout": 2.5},
    }
    assert got["s3own"]["options"]["client_options"]["config_kwargs"] == {"connect_timeout": 3}
    assert got["sftp"]["options"] == {"host": "h", "timeout": 2.5}
    assert got["sftpown"]["options"]["timeout"] == 30
    assert got["disk"] == raw["backends"]["disk"]
    assert raw["backends"]["s3"]["options"]["client_options"] == {"client_kwargs": {"verify": False}}  # not changed
    assert CONNECT_TIMEOUT == 10.0


def test_connect_timeout_must_be_positive(cli, tmp_path, closed_port):
    result = cli("upload", "x", "bucket:x", "--config", registry_for(tmp_path, closed_port), "--connect-timeout", "0")
    assert result.returncode == 2
    assert "--connect-timeout" in result.stderr
