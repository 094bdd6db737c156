"""Servers, checks and a recording plugin shared by the store tests (imported by conftest and the tests).

``MotoServer`` and ``SshServer`` are real server processes on 127.0.0.1;
``Recorder`` is a plugin that counts every hook call.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

from remote_store import Capability, CapabilitySet, NotFound, Store
from remote_store.backends import LocalBackend, MemoryBackend, S3Backend, SFTPBackend

from remote_store_transfer import hookimpl

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
STORE_KINDS = ("memory", "local", "s3", "sftp")
MIB = 1_048_576
START_TIMEOUT = 30.0


# region: process and port helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """``True`` when a new listener could bind *port* on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _banner(port: int) -> bytes:
    """The first bytes a server on *port* sends (empty if it sends nothing within a second)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        try:
            return sock.recv(64)
        except TimeoutError:
            return b""


def descendants(pid: int) -> list[int]:
    """Every live descendant of *pid* (children first), read from ``/proc``.

    sshd's per-connection children call ``setsid()``, so a process-group kill
    does not reach them.
    """
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def client_sockets_to(port: int) -> list[int]:
    """File descriptors of this process's TCP sockets connected to 127.0.0.1:*port*.

    Read from ``/proc/net/tcp`` (connection to inode) and ``/proc/self/fd``
    (inode to descriptor), so a test can cut a store's connection without
    reaching into the store.
    """
    inodes = set()
    with open("/proc/net/tcp", encoding="ascii") as fh:
        next(fh)
        for line in fh:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.split(":")[1], 16) == port:  # ESTABLISHED
                inodes.add(f"socket:[{inode}]")
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") in inodes:
                found.append(int(name))
        except OSError:
            continue
    return found


class _Server:
    """A server subprocess on a loopback port: start, wait until it answers, kill, stop."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until it answers; raise (never skip) when it cannot."""
        command = self.command()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if self.ready():
                    return
            time.sleep(0.05)
        self.stop(wait_for_port=False)  # the port may belong to someone else
        raise RuntimeError(
            f"{self.name} did not start on 127.0.0.1:{self.port} ({' '.join(command)}); log:\n{self.log()}"
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "<no log>"

    def kill(self) -> None:
        """SIGKILL the server and everything it started (what a crash looks like to a client)."""
        if self.proc is None:
            return
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, *, wait_for_port: bool = True) -> None:
        """Terminate the server and its children, wait for them, and (by default) until the port is free."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        children = descendants(proc.pid)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while wait_for_port and not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        """Start the server; stop it and free its port on exit, whatever happened."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def restart(self) -> None:
        """A fresh server on the same port (after :meth:`kill`)."""
        self.stop()
        self.start()


# endregion

# region: S3 (moto server)


class MotoServer(_Server):
    """``python -m moto.server`` on 127.0.0.1; its state lives in memory and dies with it."""

    name = "moto"
    region = "us-east-1"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
            sock.sendall(b"GET /moto-api/data.json HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.")

    def client(self) -> Any:
        """A boto3 client for test bookkeeping (buckets, pending multipart uploads); never for transfers."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=self.region,
        )

    def make_bucket(self, bucket: str) -> None:
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)

    def pending_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted (S3's temp files)."""
        response = self.client().list_multipart_uploads(Bucket=bucket)
        return [upload["Key"] for upload in response.get("Uploads", [])]

    def store(self, bucket: str, **client_options: Any) -> Store:
        """A Store over a new ``S3Backend`` for *bucket* (created if missing)."""
        return Store(backend=self.backend(bucket, **client_options))

    def backend(self, bucket: str, backend_class: type[S3Backend] = S3Backend, **client_options: Any) -> S3Backend:
        """A new *backend_class* (``S3Backend`` or a subclass) for *bucket* (created if missing)."""
        self.make_bucket(bucket)
        options = {"config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"}}, **client_options}
        return backend_class(
            bucket,
            endpoint_url=self.endpoint,
            key="testing",
            secret="testing",
            region_name=self.region,
            client_options=options,
        )


# endregion

# region: SFTP (OpenSSH)


def _keygen(path: Path) -> str:
    """Make an ed25519 key pair at *path*; return the public key line."""
    if not path.exists():
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "remote-store-transfer-tests", "-f", str(path)],
            check=True,
            capture_output=True,
        )
    return path.with_suffix(".pub").read_text().strip()


class SshServer(_Server):
    """Debian's OpenSSH ``sshd`` on a loopback port: key auth only, ``internal-sftp``."""

    name = "sshd"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        if not os.path.exists(SSHD):
            raise RuntimeError(
                f"{SSHD} is missing: install openssh-server (.ci/run does: apt-get install openssh-server)"
            )
        self.user = getpass.getuser()
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.user_key = workdir / "id_ed25519"
        self.host_public = _keygen(self.host_key)
        (workdir / "authorized_keys").write_text(_keygen(self.user_key) + "\n")
        self.root = workdir / "sftp-root"
        self.root.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        config = self.workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
                    "StrictModes no",
                    "PermitRootLogin yes",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "MaxStartups 64",
                    "MaxSessions 64",
                    "LogLevel ERROR",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:  # sshd's privilege-separation directory (a fresh container may lack it)
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        return [SSHD, "-D", "-e", "-f", str(config)]

    def ready(self) -> bool:
        return _banner(self.port).startswith(b"SSH-")

    def store(self, **backend_options: Any) -> Store:
        """A Store over a new ``SFTPBackend`` rooted at :attr:`root` (see :meth:`backend`)."""
        return Store(backend=self.backend(**backend_options))

    def backend(
        self, *, nodelay: bool = True, backend_class: type[SFTPBackend] = SFTPBackend, **backend_options: Any
    ) -> SFTPBackend:
        """A new *backend_class* (``SFTPBackend`` or a subclass) rooted at :attr:`root`, host key checked strictly.

        With *nodelay* (default) the SSH connection is made on a socket with
        ``TCP_NODELAY``, handed over with ``connect_kwargs={"sock": ...}``:
        paramiko leaves Nagle on, and on loopback Nagle plus delayed ACKs costs
        ~40 ms per SFTP write request (40 MiB took ~38 s instead of ~0.3 s).
        Such a socket serves one connection: the backend cannot reconnect.
        """
        import paramiko

        if nodelay:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            backend_options["connect_kwargs"] = {"sock": sock, **backend_options.get("connect_kwargs", {})}
        return backend_class(
            "127.0.0.1",
            port=self.port,
            username=self.user,
            pkey=paramiko.Ed25519Key.from_private_key_file(str(self.user_key)),
            base_path=str(self.root),
            host_key_policy="strict",
            known_host_keys=f"[127.0.0.1]:{self.port} {self.host_public}\n",
            **backend_options,
        )


# endregion

# region: checks shared by the test modules


def sha256_of_stream(stream: Any) -> tuple[str, int]:
    """(sha256, size) of everything *stream* yields; closes it."""
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := stream.read(MIB):
            digest.update(chunk)
            size += len(chunk)
    finally:
        stream.close()
    return digest.hexdigest(), size


def sha256_of_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return sha256_of_stream(fh)


def sha256_in_store(store: Store, path: str) -> tuple[str, int]:
    return sha256_of_stream(store.read(path))


class Recorder:
    """A plugin that records every hook call: counts, chunk bytes, the chunks' sha256, the error."""

    def __init__(self) -> None:
        self.pre = 0
        self.post = 0
        self.chunks = 0
        self.chunk_bytes = 0
        self.errors: list[BaseException | None] = []
        self.contexts: list[Any] = []
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @hookimpl
    def pre_transfer(self, context: Any) -> None:
        self.pre += 1
        self.contexts.append(context)

    @hookimpl
    def on_chunk(self, nbytes: int, data: Any) -> None:
        self.chunks += 1
        self.chunk_bytes += nbytes
        self._digest.update(data)

    @hookimpl
    def post_transfer(self, error: BaseException | None) -> None:
        self.post += 1
        self.errors.append(error)


# endregion


# region: faults that cannot be real: a source stream that breaks, a destination whose write breaks


class FaultyStream(io.RawIOBase):
    """Reads through *inner* (a real store's stream) and raises *error* once *fail_after* bytes were read.

    ``max_read`` caps each read (short reads, as a network stream gives).
    Closing it closes *inner*; :attr:`inner_closed` tells whether that happened.
    """

    def __init__(
        self,
        inner: Any,
        fail_after: int | None = None,
        error: Callable[[], BaseException] | None = None,
        max_read: Callable[[int], int] | None = None,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.fail_after = fail_after
        self.error = error or (lambda: ConnectionResetError(f"source stream broke after {fail_after} bytes"))
        self.max_read = max_read
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as whole:
            view = whole.cast("B")
            wanted = len(view)
            if wanted == 0:
                return 0
            if self.fail_after is not None:
                if self.position >= self.fail_after:
                    raise self.error()
                wanted = min(wanted, self.fail_after - self.position)
            if self.max_read is not None:
                wanted = max(1, min(wanted, self.max_read(wanted)))
            data = self.inner.read(wanted)
            n = len(data)
            view[:n] = data
            view.release()
        self.position += n
        return n

    @property
    def inner_closed(self) -> bool:
        return bool(self.inner.closed)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            super().close()


class PlainStream:
    """A stream that is no ``io`` class: only ``read`` and ``close`` (as some store clients return)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def read(self, size: int = -1) -> bytes:
        return bytes(self.inner.read(size))

    def close(self) -> None:
        self.inner.close()


class Faults:
    """Mixin for a real Backend class: records the streams ``read`` returns and can break reads or writes.

    Set :attr:`read_fails_after` to make every stream returned by ``read``
    raise after that many bytes; set :attr:`write_fails_after` to make
    ``write`` / ``write_atomic`` raise from inside the real backend's write,
    after it consumed that many bytes of the content (so the backend's own
    cleanup runs: temp file removal, multipart abort...).

    :attr:`read_sizes` / :attr:`write_read_sizes` (``wanted -> how many``)
    make the stream returned by ``read`` / the content ``write`` consumes
    answer every read with that many bytes at most (short reads);
    :attr:`plain_reads` makes ``read`` return a :class:`PlainStream`.
    """

    read_fails_after: int | None = None
    read_error: Callable[[], BaseException] | None = None
    read_sizes: Callable[[int], int] | None = None
    plain_reads = False
    write_fails_after: int | None = None
    write_error: Callable[[], BaseException] = staticmethod(
        lambda: BrokenPipeError("destination connection lost mid-write")
    )
    write_read_sizes: Callable[[int], int] | None = None
    list_fails_after: int | None = None
    """``list_files`` raises ``NotFound`` after yielding this many files (a page or folder that vanished)."""

    @property
    def opened(self) -> list[FaultyStream]:
        """Every stream ``read`` returned, in order."""
        return self.__dict__.setdefault("_faults_opened", [])

    def read(self, path: str) -> Any:
        stream = FaultyStream(super().read(path), self.read_fails_after, self.read_error, self.read_sizes)
        self.opened.append(stream)
        return PlainStream(stream) if self.plain_reads else stream

    def _incoming(self, content: Any) -> Any:
        if isinstance(content, bytes) or (self.write_fails_after is None and self.write_read_sizes is None):
            return content
        return FaultyStream(content, self.write_fails_after, self.write_error, self.write_read_sizes)

    def write(self, path: str, content: Any, **kwargs: Any) -> Any:
        return super().write(path, self._incoming(content), **kwargs)

    def list_files(self, path: str, **kwargs: Any) -> Any:
        for n, info in enumerate(super().list_files(path, **kwargs)):
            if self.list_fails_after is not None and n >= self.list_fails_after:
                raise NotFound(f"Folder not found: {path} (vanished mid-listing)", path=path, backend="faults")
            yield info

    def write_atomic(self, path: str, content: Any, **kwargs: Any) -> Any:
        return super().write_atomic(path, self._incoming(content), **kwargs)


class FaultyMemoryBackend(Faults, MemoryBackend):
    pass


class FaultyLocalBackend(Faults, LocalBackend):
    pass


class FaultyS3Backend(Faults, S3Backend):
    pass


class FaultySFTPBackend(Faults, SFTPBackend):
    pass


class NoAtomicMemoryBackend(MemoryBackend):
    """A memory store that can write but does not declare ``ATOMIC_WRITE`` (as some real stores do not)."""

    @property
    def capabilities(self) -> CapabilitySet:
        base = super().capabilities
        return CapabilitySet({c for c in Capability if base.supports(c) and c is not Capability.ATOMIC_WRITE})


# endregion

# region: what a failed call must leave behind


def open_files() -> set[str]:
    """This process's open regular files and pipes (``/proc/self/fd``), sockets and event fds left out.

    Connection pools of the S3 and SFTP clients come and go with sockets;
    a leaked local file, temp file or stream shows up here.
    """
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the fd of the listdir itself, closed by now
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            found.add(f"{fd}:{target}")
    return found


def message_of(exc: BaseException) -> str:
    """What a caller reads: the exception's text and its notes."""
    return "\n".join([f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])])


def stray_files(root: str | os.PathLike[str], expected: set[str]) -> list[str]:
    """Files under *root* other than the *expected* relative paths (temp files left behind)."""
    base = Path(root)
    return sorted(
        str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and str(p.relative_to(base)) not in expected
    )


# endregion
