"""The contenders of the tree benchmarks (ours, upstream's per-file loop, rclone) and the routes they run on:
local -> S3, S3 -> local (moto) and local -> SFTP (OpenSSH)."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remote_store import Store, register_backend
from remote_store.backends import SFTPBackend
from remote_store.ext import transfer as upstream
from tree_files import Tree, check_result, local_listing

import remote_store_transfer as rst

if TYPE_CHECKING:
    from collections.abc import Callable

    from servers import MotoBucket, MotoServer, SshServer

__all__ = [
    "AA",
    "BUCKET",
    "OURS",
    "OURS_PA",
    "OURS_REG",
    "OURS_REG_NAGLE",
    "RCLONE",
    "RCLONE_NOHASH",
    "RCLONE_SIDE",
    "UPSTREAM",
    "UPSTREAM_PA",
    "WORKERS",
    "Route",
    "Side",
    "rclone_config",
    "s3_routes",
    "sftp_route",
]

WORKERS = 16
BUCKET = "bench"
RCLONE = shutil.which("rclone") or "/usr/bin/rclone"
SIDE_TIMEOUT = 600.0  # seconds: an rclone that takes longer has hung

OURS, UPSTREAM, AA, RCLONE_SIDE = "ours", "upstream loop", "upstream loop (A/A)", "rclone"
OURS_PA, UPSTREAM_PA = "ours, S3PyArrowBackend", "upstream loop, S3PyArrowBackend"
RCLONE_NOHASH = "rclone --sftp-disable-hashcheck"
OURS_REG = "ours, registry_store (a connection per worker)"
OURS_REG_NAGLE = "ours, registry_store, plain SFTPBackend (Nagle on)"


@dataclass
class Side:
    """One contender: *action* moves a tree to a destination over the side's own store.

    The store is made by *connect* on first use; a run that hangs has its
    store closed and dropped (``timing.in_thread``'s *stop*), so the next case
    connects anew.
    """

    action: Callable[[Any, Tree, str], None]
    connect: Callable[[], Store] | None = None
    store: Store | None = None

    def run(self, tree: Tree, dest: str) -> None:
        if self.connect is not None and self.store is None:
            self.store = self.connect()
        self.action(self.store, tree, dest)

    def drop(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()


def ours_upload(connect: Callable[[], Store], workers: int = WORKERS) -> Side:
    def action(store: Store, tree: Tree, dest: str) -> None:
        check_result(rst.upload_tree(store, tree.local, dest, max_workers=workers), tree)

    return Side(action, connect)


def ours_download(connect: Callable[[], Store]) -> Side:
    def action(store: Store, tree: Tree, dest: str) -> None:
        check_result(rst.download_tree(store, tree.prefix, dest, max_workers=WORKERS), tree)

    return Side(action, connect)


def upstream_upload_loop(connect: Callable[[], Store]) -> Side:
    """What a user of upstream writes: walk the folder, one ``upload`` per file."""

    def action(store: Store, tree: Tree, dest: str) -> None:
        for dirpath, _, names in os.walk(tree.local):
            for name in names:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, tree.local).replace(os.sep, "/")
                upstream.upload(store, path, f"{dest}/{rel}")

    return Side(action, connect)


def upstream_download_loop(connect: Callable[[], Store]) -> Side:
    """What a user of upstream writes: list the prefix, one ``download`` per file, folders made on the way."""

    def action(store: Store, tree: Tree, dest: str) -> None:
        strip = len(tree.prefix) + 1
        for info in store.list_files(tree.prefix, recursive=True):
            target = os.path.join(dest, str(info.path)[strip:])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            upstream.download(store, str(info.path), target)

    return Side(action, connect)


def rclone_copy(config: Path, source: Callable[[Tree], str], target: Callable[[str], str], *flags: str) -> Side:
    """``rclone copy --transfers 16 [FLAGS] SOURCE TARGET``, rclone's defaults otherwise, without ``AWS_CA_BUNDLE``."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}

    def action(_: Any, tree: Tree, dest: str) -> None:
        command = [RCLONE, "--config", str(config), "copy", "--transfers", str(WORKERS), *flags]
        command += [source(tree), target(dest)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=SIDE_TIMEOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"rclone exited {done.returncode}: {done.stderr.strip()[-600:]}")

    return Side(action)


# --------------------------------------------------------------------------- routes


@dataclass
class Route:
    """One direction: its sides, where a run's destination goes, how it is checked and removed."""

    name: str
    sides: dict[str, Side]
    destination: Callable[[Tree, str], str]
    listing: Callable[[str], tuple[int, int]]
    cleanup: Callable[[str], None]
    counts_requests: bool
    notes: dict[str, str] = field(default_factory=dict)


def rclone_config(path: Path, moto: MotoServer, ssh: SshServer | None) -> Path:
    """A throwaway rclone.conf: remote ``moto`` (S3, provider Other) and, with *ssh*, remote ``sftp``."""
    lines = [
        "[moto]",
        "type = s3",
        "provider = Other",
        f"endpoint = {moto.endpoint}",
        "access_key_id = testing",
        "secret_access_key = testing",
        f"region = {moto.region}",
        "",
    ]
    if ssh is not None:
        known_hosts = path.parent / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{ssh.port} {ssh.host_public}\n")
        lines += [
            "[sftp]",
            "type = sftp",
            "host = 127.0.0.1",
            f"port = {ssh.port}",
            f"user = {ssh.user}",
            f"key_file = {ssh.user_key}",
            f"known_hosts_file = {known_hosts}",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def s3_routes(moto: MotoBucket, conf: Path, workdir: Path, pyarrow: bool) -> tuple[Route, Route, dict[str, str]]:
    """local -> S3 and S3 -> local (a store per side); the S3PyArrowBackend sides join local -> S3's small tree."""

    def store() -> Store:
        return moto.server.store(BUCKET)

    notes: dict[str, str] = {}
    up_sides = {
        OURS: ours_upload(store),
        UPSTREAM: upstream_upload_loop(store),
        AA: upstream_upload_loop(store),
        RCLONE_SIDE: rclone_copy(conf, lambda tree: str(tree.local), lambda dest: f"moto:{BUCKET}/{dest}"),
    }
    if pyarrow:
        try:
            from remote_store.backends import S3PyArrowBackend

            def pa_store() -> Store:
                return Store(
                    backend=S3PyArrowBackend(
                        BUCKET,
                        endpoint_url=moto.server.endpoint,
                        key="testing",
                        secret="testing",
                        region_name=moto.server.region,
                    )
                )

            importlib.import_module("pyarrow.fs")  # the backend imports it lazily: fail here, not in a run
            up_sides[OURS_PA] = ours_upload(pa_store)
            up_sides[UPSTREAM_PA] = upstream_upload_loop(pa_store)
        except Exception as exc:  # noqa: BLE001 - reported in the results, the rest still runs
            notes[OURS_PA] = notes[UPSTREAM_PA] = f"unavailable: {type(exc).__name__}: {exc}"
    upload = Route(
        name="local -> S3",
        sides=up_sides,
        destination=lambda tree, tag: f"runs/{tree.key}/{tag}",
        listing=moto.listing,
        cleanup=moto.remove,
        counts_requests=True,
        notes=notes,
    )
    down_root = workdir / "downloads"
    download = Route(
        name="S3 -> local",
        sides={
            OURS: ours_download(store),
            UPSTREAM: upstream_download_loop(store),
            AA: upstream_download_loop(store),
            RCLONE_SIDE: rclone_copy(conf, lambda tree: f"moto:{BUCKET}/{tree.prefix}", lambda dest: dest),
        },
        destination=lambda tree, tag: str(down_root / tree.key / tag),
        listing=lambda dest: local_listing(Path(dest)),
        cleanup=lambda dest: shutil.rmtree(dest, ignore_errors=True),
        counts_requests=True,
    )
    return upload, download, notes


class NoDelaySFTPBackend(SFTPBackend):
    """``SFTPBackend`` whose every (re)connect goes through a new ``TCP_NODELAY`` socket.

    paramiko leaves Nagle on, which costs ~40 ms per SFTP write on loopback
    (see ``SshServer.backend`` in tests/harness.py); the harness's fix
    hands over one socket, so such a store cannot be opened again. A registry
    store (opened once per worker thread by the tree) needs this instead.
    Registered as backend type ``sftp-nodelay``; it relies on the parent's
    ``_connect`` / ``_connect_kwargs`` / ``_host`` / ``_port`` (remote-store 0.33).
    """

    def _connect(self) -> None:
        sock = socket.create_connection((self._host, self._port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connect_kwargs = {**self._connect_kwargs, "sock": sock}
        super()._connect()


register_backend("sftp-nodelay", NoDelaySFTPBackend)


def sftp_registry(ssh: SshServer, backend_type: str) -> dict[str, Any]:
    """A remote-store registry config with one store, ``bench``, on *ssh* (host key checked strictly)."""
    options = {
        "host": "127.0.0.1",
        "port": ssh.port,
        "username": ssh.user,
        "base_path": str(ssh.root),
        "host_key_policy": "strict",
        "known_host_keys": f"[127.0.0.1]:{ssh.port} {ssh.host_public}\n",
        "connect_kwargs": {"key_filename": str(ssh.user_key), "look_for_keys": False, "allow_agent": False},
    }
    return {
        "backends": {"sftp": {"type": backend_type, "options": options}},
        "stores": {"bench": {"backend": "sftp", "root_path": ""}},
    }


def sftp_route(ssh: SshServer, conf: Path) -> Route:
    """local -> SFTP; the server's root is a local folder, so checks read it directly.

    A plain SFTP store is used by the tree behind a lock, one file at a time
    (remote-store's SFTP backend is not thread-safe); one built with
    ``registry_store`` is opened once per worker thread.
    """

    def target(dest: str) -> str:
        return f"sftp:{ssh.root / dest}"

    nodelay, plain = sftp_registry(ssh, "sftp-nodelay"), sftp_registry(ssh, "sftp")
    return Route(
        name="local -> SFTP",
        sides={
            OURS: ours_upload(ssh.store),
            OURS_REG: ours_upload(lambda: rst.registry_store(nodelay, "bench")),
            OURS_REG_NAGLE: ours_upload(lambda: rst.registry_store(plain, "bench")),
            UPSTREAM: upstream_upload_loop(ssh.store),
            AA: upstream_upload_loop(ssh.store),
            RCLONE_SIDE: rclone_copy(conf, lambda tree: str(tree.local), target),
            # By default rclone runs md5sum on the server after each file (an SSH exec per file); ours does not.
            RCLONE_NOHASH: rclone_copy(conf, lambda tree: str(tree.local), target, "--sftp-disable-hashcheck"),
        },
        destination=lambda tree, tag: f"runs/{tree.key}/{tag}",
        listing=lambda dest: local_listing(ssh.root / dest),
        cleanup=lambda dest: shutil.rmtree(ssh.root / dest, ignore_errors=True),
        counts_requests=False,
    )
