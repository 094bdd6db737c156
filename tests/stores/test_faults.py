"""Faults, injected for real where possible: what the caller gets and what is left behind.

For every fault: the caller gets an exception that names the operation and
the paths (type kept), every stream is closed (no file descriptor left open),
``post_transfer`` ran once with that very exception, no temp file is left
behind, and with ``atomic=True`` the destination holds its old content.

Real: stores (memory, local, S3 on a moto server, SFTP on OpenSSH), a local
disk that runs out of space (``RLIMIT_FSIZE`` in a subprocess), servers
killed mid-transfer, an SFTP connection cut mid-read. Simulated (what cannot be real): a source stream or a
destination write that breaks after N bytes -- a real store's stream or write
with a :class:`storekit.FaultyStream` in between.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from remote_store import BackendUnavailable, Store
from remote_store.backends import LocalBackend
from storekit import (
    MIB,
    STORE_KINDS,
    Recorder,
    message_of,
    open_files,
    sha256_in_store,
    sha256_of_file,
    stray_files,
)

from harness import MotoServer, SshServer, client_sockets_to, port_is_free
from remote_store_transfer import IncompleteTransferError, TransferManager, hookimpl
from remote_store_transfer.plugin.integrity import IntegrityPlugin

OLD = b"old content that must survive a failed call\n"
SIZE = 3 * MIB + 17
BREAK_AT = MIB + 5


class Boom(Exception):
    """What a misbehaving plugin raises."""


class RaiseIn:
    """A plugin that raises *error* from *hook* (``on_chunk``: at the second chunk)."""

    def __init__(self, hook: str, error: BaseException) -> None:
        self.hook = hook
        self.error = error
        self.chunks = 0

    @hookimpl
    def pre_transfer(self) -> None:
        if self.hook == "pre_transfer":
            raise self.error

    @hookimpl
    def on_chunk(self) -> None:
        self.chunks += 1
        if self.hook == "on_chunk" and self.chunks == 2:
            raise self.error

    @hookimpl
    def post_transfer(self, error: BaseException | None) -> None:
        if self.hook == "post_transfer" and error is None:
            raise self.error


def assert_failed_cleanly(exc: BaseException, recorder: Recorder, operation: str, *names: str, pre: int = 1) -> None:
    """The exception names the operation and paths, and post_transfer got exactly it, once.

    *pre*: how many times the recorder's pre_transfer ran (0 when a plugin that runs before it raised there).
    """
    message = message_of(exc)
    assert operation in message, message
    for name in names:
        assert name in message, message
    assert recorder.pre == pre
    assert recorder.post == 1
    assert recorder.errors[0] is exc


def assert_nothing_left(faulty, moto_server: MotoServer, expected: set[str]) -> None:
    """No temp file in the store's folder, no unfinished S3 multipart upload."""
    if faulty.files is not None and faulty.files.exists():
        assert stray_files(faulty.files, expected) == []
    if faulty.bucket is not None:
        assert moto_server.pending_uploads(faulty.bucket) == []


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


def _call(operation: str, manager: TransferManager, src, dst, local: Path, dest: Path) -> None:
    if operation == "upload":
        manager.upload(dst.store, local, "dst.bin", overwrite=True, atomic=True)
    elif operation == "download":
        manager.download(src.store, "src.bin", dest, overwrite=True, atomic=True)
    else:
        manager.transfer(src.store, "src.bin", dst.store, "dst.bin", overwrite=True, atomic=True)


# region: a source stream that breaks after N bytes


@pytest.mark.spec("XFER-010")
@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "plain"])
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_download_source_breaks(kind, atomic, faulty_store, data, tmp_path):
    src = faulty_store(kind)
    src.store.write("src.bin", data)
    dest = tmp_path / "dl" / "dest.bin"
    dest.parent.mkdir()
    dest.write_bytes(OLD)
    src.backend.read_fails_after = BREAK_AT
    recorder = Recorder()
    files = open_files()

    with pytest.raises(ConnectionResetError) as info:
        TransferManager([recorder]).download(src.store, "src.bin", dest, overwrite=True, atomic=atomic)

    assert_failed_cleanly(info.value, recorder, "download", "src.bin", str(dest))
    assert f"after {BREAK_AT} bytes" in message_of(info.value)
    assert [s.inner_closed for s in src.backend.opened] == [True]
    assert open_files() == files
    assert os.listdir(dest.parent) == ["dest.bin"]
    # atomic: the old file, untouched. plain (the spec's default): what arrived before the break.
    assert dest.read_bytes() == (OLD if atomic else data[:BREAK_AT])


@pytest.mark.spec("XFER-015")
@pytest.mark.parametrize(
    ("src_kind", "dst_kind"),
    [(kind, "local") for kind in STORE_KINDS] + [("memory", kind) for kind in ("memory", "s3", "sftp")],
)
def test_atomic_transfer_source_breaks(src_kind, dst_kind, faulty_store, moto_server, data):
    src = faulty_store(src_kind)
    dst = faulty_store(dst_kind)
    src.store.write("src.bin", data)
    dst.store.write("dst.bin", OLD)
    src.backend.read_fails_after = BREAK_AT
    recorder = Recorder()
    files = open_files()

    with pytest.raises(Exception, match=r"\w") as info:  # the destination store may map the error to its own type
        TransferManager([recorder]).transfer(src.store, "src.bin", dst.store, "dst.bin", overwrite=True, atomic=True)

    assert_failed_cleanly(info.value, recorder, "transfer", "src.bin", "dst.bin")
    assert [s.inner_closed for s in src.backend.opened] == [True]
    assert open_files() == files
    assert dst.store.read_bytes("dst.bin") == OLD
    assert_nothing_left(dst, moto_server, {"dst.bin"})


# endregion

# region: a destination whose write breaks midway


@pytest.mark.parametrize("operation", ["upload", "transfer"])
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_atomic_destination_write_breaks(kind, operation, faulty_store, moto_server, data, make_file):
    dst = faulty_store(kind)
    src = faulty_store("memory")
    src.store.write("src.bin", data)
    local = make_file("src.bin", data)
    dst.store.write("dst.bin", OLD)
    dst.backend.write_fails_after = BREAK_AT
    recorder = Recorder()
    manager = TransferManager([recorder])
    files = open_files()

    with pytest.raises(Exception, match=r"\w") as info:
        _call(operation, manager, src, dst, local, Path("unused"))

    assert_failed_cleanly(info.value, recorder, operation, "src.bin", "dst.bin")
    assert all(s.inner_closed for s in src.backend.opened)
    assert open_files() == files
    dst.backend.write_fails_after = None
    assert dst.store.read_bytes("dst.bin") == OLD
    assert_nothing_left(dst, moto_server, {"dst.bin"})


# endregion

# region: plugins that raise, KeyboardInterrupt


def _scene(src, dst, data: bytes, make_file, tmp_path: Path):
    """src.bin in *src*, OLD at dst.bin in *dst* and at a local dl/dst.bin, src.bin as a local file."""
    src.store.write("src.bin", data)
    dst.store.write("dst.bin", OLD)
    dest = tmp_path / "dl" / "dst.bin"
    dest.parent.mkdir()
    dest.write_bytes(OLD)
    return src, dst, make_file("src.bin", data), dest


@pytest.mark.parametrize("hook", ["pre_transfer", "on_chunk", "post_transfer"])
@pytest.mark.parametrize("operation", ["upload", "download", "transfer"])
def test_plugin_raises_in_a_hook(operation, hook, faulty_store, data, make_file, tmp_path):
    src, dst, local, dest = _scene(faulty_store("local"), faulty_store("local"), data, make_file, tmp_path)
    recorder = Recorder()
    error = Boom(f"plugin refuses in {hook}")
    # The recorder is registered first, so it runs last: post_transfer gets what the caller will get.
    manager = TransferManager([recorder, RaiseIn(hook, error)])
    files = open_files()

    with pytest.raises(Boom) as info:
        _call(operation, manager, src, dst, local, dest)

    assert info.value is error
    assert_failed_cleanly(error, recorder, operation, "src.bin", "dst.bin", pre=int(hook != "pre_transfer"))
    assert all(s.inner_closed for s in src.backend.opened)
    assert open_files() == files
    if hook == "pre_transfer":
        assert src.backend.opened == []  # nothing was read
    after = dest.read_bytes() if operation == "download" else dst.store.read_bytes("dst.bin")
    # A post_transfer that rejects a finished call cannot undo it: the new content is in place.
    assert after == (data if hook == "post_transfer" else OLD)
    assert os.listdir(dest.parent) == ["dst.bin"]
    assert stray_files(dst.files, {"dst.bin"}) == []


@pytest.mark.parametrize(
    ("operation", "kind", "where"),
    [
        (operation, kind, where)
        for operation in ("download", "upload", "transfer")
        for kind in STORE_KINDS
        # upload's source is a local file the core opens itself: interrupted from on_chunk only
        for where in (("on_chunk",) if operation == "upload" else ("on_chunk", "source stream"))
    ],
)
def test_keyboard_interrupt_mid_transfer(operation, kind, where, faulty_store, moto_server, data, make_file, tmp_path):
    src, dst, local, dest = _scene(
        faulty_store(kind if operation == "download" else "memory"),
        faulty_store("memory" if operation == "download" else kind),
        data,
        make_file,
        tmp_path,
    )
    interrupt = KeyboardInterrupt()
    plugins: list[object] = []
    if where == "on_chunk":
        plugins.append(RaiseIn("on_chunk", interrupt))
    else:
        src.backend.read_fails_after = BREAK_AT
        src.backend.read_error = lambda: interrupt
    recorder = Recorder()
    files = open_files()

    with pytest.raises(KeyboardInterrupt) as info:
        _call(operation, TransferManager([recorder, *plugins]), src, dst, local, dest)

    assert info.value is interrupt
    assert_failed_cleanly(interrupt, recorder, operation, "src.bin", "dst.bin")
    assert all(s.inner_closed for s in src.backend.opened)
    assert open_files() == files
    src.backend.read_fails_after = None
    assert dest.read_bytes() == OLD
    assert os.listdir(dest.parent) == ["dst.bin"]
    assert dst.store.read_bytes("dst.bin") == OLD
    assert_nothing_left(dst, moto_server, {"dst.bin"})


# endregion

# region: the local disk runs out of space

DISK_FULL_CHILD = r"""
import json, os, resource, signal, sys
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend
from remote_store_transfer import IncompleteTransferError, TransferManager, hookimpl
from remote_store_transfer.plugin.integrity import IntegrityPlugin

args = json.loads(sys.argv[1])
errors = []

class Record:
    @hookimpl
    def post_transfer(self, error):
        errors.append(error)

src = Store(backend=MemoryBackend())
src.write("src.bin", os.urandom(args["size"]))
local_store = Store(backend=LocalBackend(root=args["root"]))
upload_source = os.path.join(args["work"], "upload-source.bin")
with open(upload_source, "wb") as fh:
    fh.write(os.urandom(args["size"]))
fds = sorted(os.listdir("/proc/self/fd"))

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that write() fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (args["limit"], args["limit"]))
manager = TransferManager([Record()])
try:
    if args["operation"] == "download":
        manager.download(src, "src.bin", args["dest"], overwrite=True, atomic=args["atomic"])
    elif args["operation"] == "transfer":
        manager.transfer(src, "src.bin", local_store, "dst.bin", overwrite=True, atomic=args["atomic"])
    else:
        manager.upload(local_store, upload_source, "dst.bin", overwrite=True, atomic=args["atomic"])
except BaseException as exc:
    caught = exc
else:
    caught = None
print(json.dumps({
    "type": type(caught).__name__,
    "errno": getattr(caught, "errno", None),
    "message": "\n".join([str(caught), *getattr(caught, "__notes__", [])]),
    "post_errors": [error is caught for error in errors],
    "fds_equal": sorted(os.listdir("/proc/self/fd")) == fds,
}))
"""


@pytest.mark.parametrize(
    ("operation", "atomic"),
    [("download", True), ("download", False), ("upload", True), ("transfer", True)],
)
def test_local_disk_runs_out_of_space(operation, atomic, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "dst.bin").write_bytes(OLD)
    work = tmp_path / "work"
    work.mkdir()
    dest = tmp_path / "dl" / "dst.bin"
    dest.parent.mkdir()
    dest.write_bytes(OLD)
    args = {
        "operation": operation,
        "atomic": atomic,
        "size": SIZE,
        "limit": MIB,
        "root": str(root),
        "work": str(work),
        "dest": str(dest),
    }

    child = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, json.dumps(args)], capture_output=True, text=True, timeout=120
    )

    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert (result["type"], result["errno"]) == ("OSError", 27), result  # EFBIG: File too large
    assert operation in result["message"]
    assert "dst.bin" in result["message"]
    assert result["post_errors"] == [True]
    assert result["fds_equal"]
    assert stray_files(root, {"dst.bin"}) == []
    assert (root / "dst.bin").read_bytes() == OLD
    assert os.listdir(dest.parent) == ["dst.bin"]
    if operation == "download" and not atomic:
        assert len(dest.read_bytes()) == MIB  # the spec's default: the part that fitted stays
    else:
        assert dest.read_bytes() == OLD


# endregion

# region: a server killed mid-transfer


class KillAt:
    """A plugin that SIGKILLs *server* (and its children) once *at* bytes have moved."""

    def __init__(self, server: MotoServer | SshServer, at: int) -> None:
        self.server = server
        self.at = at
        self.killed = False

    @hookimpl
    def on_chunk(self, context) -> None:
        if not self.killed and context.bytes_transferred >= self.at:
            self.killed = True
            self.server.kill()


def _remote_store(server: MotoServer | SshServer) -> Store:
    if isinstance(server, MotoServer):
        # 5 MiB blocks: s3fs reads in ranged GETs and writes in multipart parts, so the kill lands mid-body.
        # One attempt per request: the server is dead, retrying only takes time.
        return server.store(
            "killed", default_block_size=5 * MIB, config_kwargs={"retries": {"max_attempts": 1, "mode": "standard"}}
        )
    return server.store()


def _remote_leftovers(server: MotoServer | SshServer) -> list[str]:
    if isinstance(server, MotoServer):
        return server.pending_uploads("killed")
    return stray_files(server.root, {"src.bin", "dst.bin"})


class LocalEnds:
    """The local ends of the server tests: a local store and a local folder, each holding ``dst.bin`` = OLD."""

    def __init__(self, tmp_path: Path, source: Path) -> None:
        self.source = source
        self.root = tmp_path / "local-store"
        self.root.mkdir()
        self.store = Store(backend=LocalBackend(root=str(self.root)))
        self.store.write("dst.bin", OLD)
        self.dest = tmp_path / "dl" / "dst.bin"
        self.dest.parent.mkdir()
        self.dest.write_bytes(OLD)

    def call(self, operation: str, manager: TransferManager, remote: Store) -> None:
        """The atomic *operation* between *remote* and these ends, overwriting ``dst.bin``."""
        if operation == "upload":
            manager.upload(remote, self.source, "dst.bin", overwrite=True, atomic=True)
        elif operation == "download":
            manager.download(remote, "src.bin", self.dest, overwrite=True, atomic=True)
        else:
            manager.transfer(remote, "src.bin", self.store, "dst.bin", overwrite=True, atomic=True)

    def assert_untouched(self) -> None:
        assert self.dest.read_bytes() == OLD
        assert os.listdir(self.dest.parent) == ["dst.bin"]
        assert self.store.read_bytes("dst.bin") == OLD
        assert stray_files(self.root, {"dst.bin"}) == []


@pytest.mark.parametrize("operation", ["upload", "download", "transfer"])
@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_server_killed_mid_transfer(kind, operation, payloads, tmp_path):
    """The server is SIGKILLed after 6 of 16 MiB; then a fresh server on the same port takes the same call.

    Reading from SFTP, the call runs with ``integrity`` (as docs/reliability.md
    says to): a dropped SFTP read can end without an error, and only a known
    size turns that into a failure (see the next test).
    """
    source, digest = payloads(16 * MIB)
    server = MotoServer(tmp_path / "moto") if kind == "s3" else SshServer(tmp_path / "sshd")
    ends = LocalEnds(tmp_path, source)

    with server.running():
        remote = _remote_store(server)
        remote.write("dst.bin", OLD)
        with open(source, "rb") as fh:
            remote.write("src.bin", fh)
        recorder = Recorder()
        files = open_files()

        guard = [IntegrityPlugin()] if kind == "sftp" and operation != "upload" else []
        manager = TransferManager([*guard, recorder, KillAt(server, 6 * MIB)])

        with pytest.raises(Exception, match=r"\w") as info:
            ends.call(operation, manager, remote)

        remote.close()
        assert_failed_cleanly(info.value, recorder, operation, "dst.bin")
        assert open_files() == files
        ends.assert_untouched()
        if kind == "sftp":
            # The server's disk outlives it: the destination is intact. remote-store does not try to remove
            # its temp file over a dropped connection, so one orphan may remain beside it (docs/reliability.md).
            assert (server.root / "dst.bin").read_bytes() == OLD
            orphans = _remote_leftovers(server)
            assert all(name.startswith(".~tmp.dst.bin.") for name in orphans), orphans
            assert len(orphans) <= int(operation == "upload")

        server.restart()  # same port; moto starts empty, sshd's files are still there
        remote = _remote_store(server)
        try:
            if kind == "s3":
                with open(source, "rb") as fh:
                    remote.write("src.bin", fh)
            ends.call(operation, TransferManager(), remote)
            if operation == "upload":
                assert sha256_in_store(remote, "dst.bin") == (digest, 16 * MIB)
            if kind == "s3":
                assert _remote_leftovers(server) == []
        finally:
            remote.close()
    assert port_is_free(server.port)
    if operation == "download":
        assert sha256_of_file(ends.dest) == (digest, 16 * MIB)
    if operation == "transfer":
        assert sha256_in_store(ends.store, "dst.bin") == (digest, 16 * MIB)


class CutAt:
    """A plugin that shuts down (``SHUT_WR``) this process's connections to *port* once *at* bytes have moved.

    What the client sees when its connection breaks: its next send fails with
    ``EPIPE``. Found through ``/proc``, not through the store's internals.
    """

    def __init__(self, port: int, at: int) -> None:
        self.port = port
        self.at = at
        self.cut = False

    @hookimpl
    def on_chunk(self, context) -> None:
        if not self.cut and context.bytes_transferred >= self.at:
            self.cut = True
            fds = client_sockets_to(self.port)
            assert fds, "no connection to cut"
            for fd in fds:
                with socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("operation", ["download", "transfer"])
def test_an_sftp_read_cut_short_never_passes_as_complete(operation, payloads, tmp_path):
    """Cut the SFTP connection after 6 of 16 MiB, several times.

    paramiko then either raises (``BackendUnavailable``) or, when the failed
    send reaches it as ``EOFError``, ends the stream early *without an error*,
    and the plain call would commit a 6 MiB file (measured: most attempts).
    With ``integrity`` the source's size is known and every attempt fails,
    leaving the atomic destination as it was.
    """
    source, digest = payloads(16 * MIB)
    server = SshServer(tmp_path / "sshd")
    ends = LocalEnds(tmp_path, source)

    outcomes = set()
    with server.running():
        remote = server.store()
        with open(source, "rb") as fh:
            remote.write("src.bin", fh)
        remote.close()
        for _ in range(4):
            remote = server.store()
            recorder = Recorder()
            with pytest.raises((IncompleteTransferError, BackendUnavailable)) as info:
                ends.call(
                    operation, TransferManager([IntegrityPlugin(), recorder, CutAt(server.port, 6 * MIB)]), remote
                )
            remote.close()
            outcomes.add(type(info.value).__name__)
            assert_failed_cleanly(info.value, recorder, operation, "src.bin")
            ends.assert_untouched()

        remote = server.store()  # an intact connection: the same call goes through
        try:
            ends.call(operation, TransferManager([IntegrityPlugin()]), remote)
        finally:
            remote.close()
    if operation == "download":
        assert sha256_of_file(ends.dest) == (digest, 16 * MIB)
    else:
        assert sha256_in_store(ends.store, "dst.bin") == (digest, 16 * MIB)
    print("outcomes:", sorted(outcomes))


# endregion


# region: servers that cannot start


@pytest.mark.parametrize("server_class", [MotoServer, SshServer])
def test_a_server_that_cannot_start_fails_loudly(server_class, tmp_path):
    """The fixtures raise (the tests error, never skip) and leave no process behind, here: the port is taken."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = server_class(tmp_path / "server", port=squatter.getsockname()[1])

        with pytest.raises(RuntimeError, match="did not start on 127.0.0.1") as info:
            server.start()

    assert server.proc is None
    assert "log:" in str(info.value)


# endregion
