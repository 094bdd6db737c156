"""The real servers of the tests and the benchmarks: moto S3 and OpenSSH sshd, each its own process on 127.0.0.1.

One harness for both (``tests`` is on pytest's ``pythonpath``; ``benchmarks/servers.py``
puts it on ``sys.path``): :class:`MotoServer` runs ``python -m moto.server``, never
moto in the caller's process, whose threads would compete with the client under test
for the GIL; :class:`SshServer` runs Debian's ``/usr/sbin/sshd``. The session's shared
instances are the ``moto_server`` and ``ssh_server`` fixtures of ``tests/conftest.py``;
a test that kills or restarts a server starts one of its own.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from remote_store import Store
from remote_store.backends import S3Backend, SFTPBackend

__all__ = [
    "SSHD",
    "START_TIMEOUT",
    "MotoServer",
    "SshServer",
    "client_sockets_to",
    "descendants",
    "free_port",
    "port_is_free",
]

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
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

    @contextlib.contextmanager
    def credentials_checked(self) -> Iterator[Self]:
        """Credentials checked on every request while inside; unchecked again on exit, whatever happened.

        moto checks them only once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests were
        served (``inf`` by default); ``POST /moto-api/reset-auth`` sets that count.
        """
        self._reset_auth(b"0")
        try:
            yield self
        finally:
            self._reset_auth(b"inf")

    def _reset_auth(self, count: bytes) -> None:
        url = f"{self.endpoint}/moto-api/reset-auth"
        # not form-encoded (urllib's default): flask would parse the body as a form and moto would read b""
        request = urllib.request.Request(url, data=count, method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

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
