"""Tree benchmarks: ``upload_tree`` / ``download_tree`` against upstream's per-file loop and ``rclone copy``.

Run it alone, or after the main suite::

    python benchmarks/trees.py               # the full run (a few minutes)
    python benchmarks/trees.py --quick       # a smoke run (well under a minute)
    python benchmarks/run.py --trees         # the main suite, then this one (--quick passes on)

It measures, in one run, against real servers on 127.0.0.1 (a moto S3 server
and OpenSSH ``sshd``, both started and stopped here; see
``tests/stores/storekit.py``):

1. Two trees, 400 x 64 KiB and 8 x 32 MiB (quick: 40 x 64 KiB and 2 x 4 MiB),
   for local -> S3, S3 -> local and local -> SFTP. Sides: ours
   (``upload_tree`` / ``download_tree``, ``max_workers=16``); upstream's
   natural loop (one ``remote_store.ext.transfer.upload`` / ``download`` per
   file, default ``overwrite=False``); ``rclone copy --transfers 16`` (rclone's
   defaults otherwise) against the same server; and "upstream loop (A/A)", the
   upstream loop measured a second time under another name: its ratio to the
   first is the noise floor of the run. On SFTP, ours runs twice more: with
   a store from ``registry_store`` (opened once per worker thread) on
   TCP_NODELAY sockets, and (small tree only) with the stock backend type, whose
   sockets keep Nagle on; rclone runs twice too, the second time with
   ``--sftp-disable-hashcheck``. Sides run in ABBA order (forward,
   then backward, ...); each run writes to a fresh destination, which is
   verified afterwards (file count and total bytes) and then removed, so a
   broken run cannot look fast and nothing is ever skipped.
2. Targets on the many-small-files tree, local -> S3: ours at least 2x
   faster than the upstream loop, and at most 1.5x rclone's wall time.
3. Requests per file to S3, counted in moto's access log (one line per
   request) in the window of each run, for every S3 side.
4. Memory per file: ``transfer_tree`` memory store -> memory store of
   16-byte files at 10,000 and 100,000 files (quick: 1,000 and 10,000); peak
   ``tracemalloc`` during the call above the baseline taken after the source
   was built, divided by the file count; next to the same for upstream's loop.
5. The small tree local -> S3 again over remote-store's ``S3PyArrowBackend``
   (needs ``pyarrow``, in the ``bench`` extra), ours and the upstream loop.

Times are the best of the trials (``--trials``, default 4; quick 2); ratios
are taken between sides of the same run. It prints Markdown tables and
PASS/FAIL, and writes ``benchmarks/results/trees.json`` and ``trees.md``
(a quick run writes to the temp dir instead, like ``run.py --quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "stores"))

# No client here may ever ask for instance metadata (169.254.169.254): every client gets its keys.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

from machine import cpu, git_rev, load  # noqa: E402
from remote_store import Store, register_backend  # noqa: E402
from remote_store.backends import MemoryBackend, SFTPBackend  # noqa: E402
from remote_store.ext import transfer as upstream  # noqa: E402
from storekit import MotoServer, SshServer  # noqa: E402

import remote_store_transfer as rst  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

KiB = 1024
MiB = 1024 * KiB
WORKERS = 16
BUCKET = "bench"
RCLONE = shutil.which("rclone") or "/usr/bin/rclone"
SIDE_TIMEOUT = 600.0  # seconds: an rclone that takes longer has hung
WARM_TIMEOUT = 30.0  # seconds: the warm-up moves 3 files of 1 KiB

OURS, UPSTREAM, AA, RCLONE_SIDE = "ours", "upstream loop", "upstream loop (A/A)", "rclone"
OURS_PA, UPSTREAM_PA = "ours, S3PyArrowBackend", "upstream loop, S3PyArrowBackend"
RCLONE_NOHASH = "rclone --sftp-disable-hashcheck"
OURS_REG = "ours, registry_store (a connection per worker)"
OURS_REG_NAGLE = "ours, registry_store, plain SFTPBackend (Nagle on)"
SMALL_ONLY = (OURS_PA, UPSTREAM_PA, OURS_REG_NAGLE)  # sides measured on the many-small-files tree only

BUSY_BEFORE = 1.5  # 1-minute load average before the run above which the machine counts as busy
BUSY_DURING = 3.0  # ... after a case (this run alone makes about 2 to 2.5 on two cores)
SPEEDUP_TARGET = 2.0  # upstream loop time / our time, small tree, local -> S3
RCLONE_TARGET = 1.5  # our time / rclone time, same case

# One line per request in moto's (werkzeug's) access log; the method may follow a colour escape.
REQUEST_LINE = re.compile(rb'\] "(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|HEAD|DELETE) ')


# --------------------------------------------------------------------------- trees


@dataclass
class Tree:
    """A source tree: *count* files of *size* bytes, on local disk and in the bucket under ``src/<key>``."""

    key: str
    count: int
    size: int
    local: Path

    @property
    def name(self) -> str:
        size = f"{self.size // MiB} MiB" if self.size >= MiB else f"{self.size // KiB} KiB"
        return f"{self.count} x {size}"

    @property
    def prefix(self) -> str:
        return f"src/{self.key}"

    @property
    def total(self) -> int:
        return self.count * self.size

    def relpaths(self) -> list[str]:
        """Nested folders for many files (20 per folder), a flat folder for few."""
        if self.count <= 20:
            return [f"f{i:05d}.bin" for i in range(self.count)]
        return [f"d{i // 20:03d}/f{i:05d}.bin" for i in range(self.count)]

    def make(self) -> None:
        for rel in self.relpaths():
            path = self.local / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(self.size))


def local_listing(root: Path) -> tuple[int, int]:
    """(file count, total bytes) under *root*."""
    count = total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            count += 1
            total += os.path.getsize(os.path.join(dirpath, name))
    return count, total


# --------------------------------------------------------------------------- the sides


def check_result(result: Any, tree: Tree) -> None:
    """Raise unless a tree call moved every file of *tree*."""
    if not result.ok or len(result.transferred) != tree.count:
        failed = dict(list(result.failed.items())[:3])
        raise RuntimeError(
            f"tree call: ok={result.ok}, {len(result.transferred)} of {tree.count} transferred, "
            f"{len(result.skipped)} skipped, failed (first 3): {failed}"
        )


@dataclass
class Side:
    """One contender: *action* moves a tree to a destination over the side's own store.

    The store is made by *connect* on first use; a run that hangs has its
    store closed and dropped (see :func:`run_with_timeout`), so the next case
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


ABANDONED: list[str] = []  # runs whose thread outlived its timeout and the closing of its store


def run_with_timeout(side: Side, tree: Tree, dest: str, timeout: float) -> None:
    """``side.run(tree, dest)`` in a daemon thread; a run that hangs is cut off by closing its store.

    Every side runs this way, so the thread costs them all the same.
    """
    raised: list[BaseException] = []

    def target() -> None:
        try:
            side.run(tree, dest)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            raised.append(exc)

    thread = threading.Thread(target=target, name="bench-side", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        side.drop()
        thread.join(60)
        if thread.is_alive():
            ABANDONED.append(dest)
        raise TimeoutError(f"still running after {timeout:.0f} s; its store was closed to end it")
    if raised:
        raise raised[0]


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


class Moto:
    """The moto server, a bookkeeping client and its access log."""

    def __init__(self, server: MotoServer) -> None:
        self.server = server
        self.client = server.client()
        server.make_bucket(BUCKET)

    def mark(self) -> int:
        """The access log's current length: requests after this point belong to what runs next."""
        return self.server.log_path.stat().st_size

    def requests(self, start: int, end: int) -> dict[str, int]:
        """Requests logged between two marks, by method."""
        with open(self.server.log_path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read(end - start)
        counts: dict[str, int] = {}
        for match in REQUEST_LINE.finditer(chunk):
            method = match.group(1).decode()
            counts[method] = counts.get(method, 0) + 1
        return counts

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"]

    def listing(self, prefix: str) -> tuple[int, int]:
        sizes = [size for _, size in self.keys(prefix)]
        return len(sizes), sum(sizes)

    def remove(self, prefix: str) -> None:
        keys = [key for key, _ in self.keys(prefix)]
        for start in range(0, len(keys), 1000):
            objects = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})

    def put_tree(self, tree: Tree) -> None:
        for rel in tree.relpaths():
            with open(tree.local / rel, "rb") as fh:
                self.client.put_object(Bucket=BUCKET, Key=f"{tree.prefix}/{rel}", Body=fh)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


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


def s3_routes(moto: Moto, conf: Path, workdir: Path, pyarrow: bool) -> tuple[Route, Route, dict[str, str]]:
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
    (see ``SshServer.backend`` in tests/stores/storekit.py); storekit's fix
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


# --------------------------------------------------------------------------- measuring


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 400 else text[:400] + " ..."


def measure(route: Route, tree: Tree, sides: list[str], trials: int, moto: Moto, timeout: float) -> dict[str, Any]:
    """Every side *trials* times in ABBA order, each run to a fresh destination, verified, then removed.

    A side that fails (an exception, a wrong destination, a hang cut off
    after *timeout* seconds) is reported with its error and leaves the run.
    """
    out: dict[str, Any] = {name: {"times_s": [], "requests": []} for name in sides}
    live = list(sides)
    counting = route.counts_requests
    warm = Tree(f"warm-{tree.key}", 3, 1 * KiB, tree.local.parent / f"warm-{tree.key}")
    if not warm.local.exists():
        warm.make()
    if route.name.startswith("S3"):
        moto.put_tree(warm)
    for name in list(live):  # warm-up: imports, connections, first-use caches (untimed)
        dest = route.destination(warm, f"warm-{slug(name)}")
        try:
            run_with_timeout(route.sides[name], warm, dest, min(timeout, WARM_TIMEOUT))
        except Exception as exc:  # noqa: BLE001 - a side that cannot run is reported, the others go on
            out[name]["error"] = f"warm-up: {_error(exc)}"
            live.remove(name)
        route.cleanup(dest)
    for trial in range(trials):
        order = live if trial % 2 == 0 else live[::-1]
        for name in list(order):
            dest = route.destination(tree, f"{slug(name)}-{trial}")
            gc.collect()
            start_mark = moto.mark() if counting else 0
            start = time.perf_counter()
            try:
                run_with_timeout(route.sides[name], tree, dest, timeout)
                wall = time.perf_counter() - start
                end_mark = moto.mark() if counting else 0
                count, total = route.listing(dest)
                if (count, total) != (tree.count, tree.total):
                    raise RuntimeError(
                        f"destination holds {count} files, {total} bytes; expected {tree.count}, {tree.total}"
                    )
            except Exception as exc:  # noqa: BLE001 - reported; the side leaves the run
                out[name]["error"] = f"trial {trial}: {_error(exc)}"
                live.remove(name)
                route.cleanup(dest)
                continue
            out[name]["times_s"].append(wall)
            if counting:
                out[name]["requests"].append(moto.requests(start_mark, end_mark))
            route.cleanup(dest)
    for row in out.values():
        if row["times_s"]:
            row["best_s"] = min(row["times_s"])
            row["median_s"] = statistics.median(row["times_s"])
            row["mb_s"] = tree.total / row["best_s"] / 1e6
            row["files_s"] = tree.count / row["best_s"]
        if row["requests"]:
            totals = [sum(r.values()) for r in row["requests"]]
            row["requests_per_file"] = statistics.mean(totals) / tree.count
            methods = sorted({m for r in row["requests"] for m in r})
            row["requests_per_file_by_method"] = {
                m: statistics.mean(r.get(m, 0) for r in row["requests"]) / tree.count for m in methods
            }
        if not row["requests"]:
            del row["requests"]
    return out


def ratio(rows: dict[str, Any], numerator: str, denominator: str) -> float | None:
    a, b = rows.get(numerator, {}).get("best_s"), rows.get(denominator, {}).get("best_s")
    return a / b if a and b else None


COMPARISONS = (
    # (label, numerator, denominator): time over time, so > 1 means the denominator is faster
    ("upstream loop / ours (speed-up)", UPSTREAM, OURS),
    ("ours / rclone (wall time)", OURS, RCLONE_SIDE),
    ("ours / rclone --sftp-disable-hashcheck (wall time)", OURS, RCLONE_NOHASH),
    ("upstream loop / ours, registry_store (speed-up)", UPSTREAM, OURS_REG),
    ("ours, registry_store / rclone --sftp-disable-hashcheck (wall time)", OURS_REG, RCLONE_NOHASH),
    ("A/A: upstream loop / upstream loop (noise floor)", UPSTREAM, AA),
    ("upstream loop / ours, S3PyArrowBackend (speed-up)", UPSTREAM_PA, OURS_PA),
    ("ours, S3PyArrowBackend / rclone (wall time)", OURS_PA, RCLONE_SIDE),
    ("ours, S3PyArrowBackend / ours, S3Backend (wall time)", OURS_PA, OURS),
)


# --------------------------------------------------------------------------- memory


PAYLOAD = b"0123456789abcdef"  # 16 bytes


def _memory_source(count: int) -> Store:
    src = Store(backend=MemoryBackend())
    for i in range(count):
        src.write(f"src/d{i // 1000:03d}/f{i:06d}.bin", PAYLOAD)
    return src


def _upstream_transfer_loop(src: Store, dst: Store) -> None:
    for info in src.list_files("src", recursive=True):
        path = str(info.path)
        upstream.transfer(src, path, dst, "dst" + path[3:])


def memory_per_file(count: int, side: str) -> dict[str, Any]:
    """Peak tracemalloc of one memory -> memory tree copy of *count* 16-byte files, above the built source."""
    gc.collect()
    tracemalloc.start()
    try:
        src = _memory_source(count)
        dst = Store(backend=MemoryBackend())
        gc.collect()
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        start = time.perf_counter()
        if side == OURS:
            result: Any = rst.transfer_tree(src, "src", dst, "dst", max_workers=WORKERS)
            check_result(result, Tree("memory", count, len(PAYLOAD), Path()))
        else:
            result = _upstream_transfer_loop(src, dst)
        wall = time.perf_counter() - start
        current, peak = tracemalloc.get_traced_memory()
        del result
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()  # what stays after the call: the destination's data, caches
    finally:
        tracemalloc.stop()
    copied = sum(1 for _ in dst.list_files("dst", recursive=True))
    if copied != count:
        raise RuntimeError(f"{side}: the destination holds {copied} files, expected {count}")
    return {
        "files": count,
        "peak_bytes": peak - baseline,
        "peak_per_file": (peak - baseline) / count,
        "retained_per_file": (kept - baseline) / count,
        "peak_above_retained_per_file": (peak - kept) / count,
        "result_per_file": (current - kept) / count,
        "wall_s_traced": wall,
    }


def bench_memory(counts: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in counts:
        for side in (OURS, UPSTREAM):
            try:
                out.setdefault(side, {})[str(count)] = memory_per_file(count, side)
            except Exception as exc:  # noqa: BLE001 - reported
                out.setdefault(side, {})[str(count)] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"    {side}, {count} files: done", flush=True)
    return out


# --------------------------------------------------------------------------- targets, report


LEGEND = (
    f"ours: `upload_tree` / `download_tree` with `max_workers={WORKERS}`, one store per side. A plain SFTP store "
    "is used by the tree behind a lock, one file at a time (remote-store's SFTP backend is not thread-safe); "
    '"ours, registry_store" builds the store with `registry_store()`, which the tree opens once per worker '
    "thread, on TCP_NODELAY sockets like the other SFTP sides; "
    '"Nagle on" is the same with the stock `sftp` backend type (paramiko leaves Nagle on: ~40 ms per write here).',
    "upstream loop: one `remote_store.ext.transfer.upload` / `download` per file, default `overwrite=False`; "
    "(A/A) is the same loop measured again under another name: its ratio is the noise floor.",
    f"rclone: `rclone copy --transfers {WORKERS}`, otherwise rclone's defaults (S3: HEAD after each PUT; "
    "SFTP: `md5sum` run over SSH after each file, which `--sftp-disable-hashcheck` turns off). "
    "Its time includes starting the process and its connections.",
    "Every run writes to a fresh destination, verified afterwards (file count, total bytes), then removed. "
    "A side that failed, or hung past the timeout (its store is then closed), shows its error in the note column.",
    "requests/file: lines in moto's access log during the run, divided by the file count (listing included).",
    "Memory: the destination is a MemoryBackend store, so what it keeps counts in the peak; "
    '"retained after the call" is what stays once the result is dropped (the copied files and their metadata).',
)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    small = results["cases"].get("local -> S3", {}).get("small", {})
    rows = small.get("sides", {})
    name = small.get("tree", "small tree")
    checks = []
    speedup = ratio(rows, UPSTREAM, OURS)
    checks.append(
        {
            "target": f"{name}, local -> S3: upstream loop / ours >= {SPEEDUP_TARGET:.1f}",
            "value": "n/a" if speedup is None else f"{speedup:.2f}x",
            "pass": speedup is not None and speedup >= SPEEDUP_TARGET,
        }
    )
    vs_rclone = ratio(rows, OURS, RCLONE_SIDE)
    checks.append(
        {
            "target": f"{name}, local -> S3: ours / rclone (wall time) <= {RCLONE_TARGET:.1f}",
            "value": "n/a" if vs_rclone is None else f"{vs_rclone:.2f}x",
            "pass": vs_rclone is not None and vs_rclone <= RCLONE_TARGET,
        }
    )
    return checks


def _table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    text = {"route", "tree", "side", "comparison", "target", "result", "note"}
    align = ["---" if h in text else "---:" for h in headers]
    lines = ["", f"### {title}", "", "| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _methods(row: dict[str, Any]) -> str:
    by = row.get("requests_per_file_by_method", {})
    return ", ".join(f"{m} {v:.2f}" for m, v in by.items())


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"Run of {meta['date']} on {meta['machine']}, commit {meta.get('git')}, Python {meta['python']}, "
        f"remote-store {meta['remote_store']}, "
        f"rclone {meta['rclone']}; best of {meta['trials']} trials in ABBA order, {WORKERS} workers for ours and "
        f"rclone; load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after (this run's own "
        "servers and workers included)."
    ]
    loads = [
        f"{c['load_after']:.1f}" for cases in results["cases"].values() for c in cases.values() if "load_after" in c
    ]
    if loads:
        lines[0] += f" Load average after each case: {', '.join(loads)}."
    if meta.get("busy"):
        lines += [
            "",
            f"**Other work competed for the CPUs (load above {BUSY_BEFORE} before the run or above {BUSY_DURING} "
            "during it): ratios are less reliable; the A/A lines show by how much.**",
        ]

    rows = []
    for route, cases in results["cases"].items():
        for case in cases.values():
            for side, row in case["sides"].items():
                if "best_s" not in row:
                    rows.append([route, case["tree"], side, "", "", "", "", "", row.get("error", "no run")])
                    continue
                rpf = f"{row['requests_per_file']:.2f}" if "requests_per_file" in row else ""
                cells = [f"{row['best_s']:.3f}", f"{row['median_s']:.3f}", f"{row['mb_s']:.1f}"]
                cells += [f"{row['files_s']:.0f}", rpf, _methods(row)]
                rows.append([route, case["tree"], side, *cells])
    headers = ["route", "tree", "side", "best (s)", "median (s)", "MB/s", "files/s", "requests/file", "note"]
    lines += _table("Wall time per tree (moto S3 and OpenSSH on 127.0.0.1)", headers, rows)

    rows = []
    for route, cases in results["cases"].items():
        for case in cases.values():
            for label, a, b in COMPARISONS:
                value = ratio(case["sides"], a, b)
                if value is not None:
                    rows.append([route, case["tree"], label, f"{value:.2f}x"])
    lines += _table("Ratios (best times of the same run)", ["route", "tree", "comparison", "ratio"], rows)

    rows = [[c["target"], c["value"], "PASS" if c["pass"] else "FAIL"] for c in results["targets"]]
    lines += _table("Targets", ["target", "measured", "result"], rows)

    mem = results.get("memory")
    if mem:
        rows = []
        for side, by_count in mem.items():
            for count, row in by_count.items():
                if "error" in row:
                    rows.append([side, count, "", "", "", "", row["error"]])
                    continue
                keys = ("peak_per_file", "retained_per_file", "peak_above_retained_per_file", "result_per_file")
                cells = [f"{row[k]:.0f}" for k in keys]
                rows.append([side, f"{int(count):,}", *cells, ""])
        headers = ["side", "files", "peak bytes/file", "retained after the call, bytes/file", "peak above that"]
        headers += ["the result object, bytes/file"]
        title = "Memory: transfer_tree memory -> memory, 16-byte files, peak tracemalloc above the built source"
        lines += _table(title, [*headers, "note"], rows)
    lines += ["", "### Notes", "", *[f"- {n}" for n in [*LEGEND, *results.get("notes", [])]]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def _rclone_version() -> str:
    with contextlib.suppress(Exception):
        done = subprocess.run([RCLONE, "version"], capture_output=True, text=True, check=True, timeout=30)
        return done.stdout.split()[1]
    return "missing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small trees, 2 trials, fewer files in memory")
    parser.add_argument("--trials", type=int, help="runs per side, ABBA order (default 4; quick 2)")
    parser.add_argument("--no-sftp", action="store_true", help="skip local -> SFTP")
    parser.add_argument("--no-pyarrow", action="store_true", help="skip the S3PyArrowBackend sides")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory-per-file measurement")
    parser.add_argument("--workdir", help="where trees and servers live (default: a temp dir in /dev/shm)")
    parser.add_argument("--json", type=Path, help="JSON output (default benchmarks/results/trees.json)")
    parser.add_argument("--markdown", type=Path, help="Markdown output (default benchmarks/results/trees.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--timeout", type=float, help="seconds before a run counts as hung (120; quick 30)")
    args = parser.parse_args(argv)
    # Failed files are in the results; one warning per failed clean-up would drown the progress lines.
    logging.getLogger("remote_store_transfer").setLevel(logging.ERROR)
    out_dir = Path(tempfile.gettempdir()) / "rst-bench-quick" if args.quick else HERE / "results"
    args.json = args.json or out_dir / "trees.json"
    args.markdown = args.markdown or out_dir / "trees.md"
    trials = args.trials or (2 if args.quick else 4)
    args.timeout = args.timeout or (30.0 if args.quick else 120.0)
    if args.quick:
        shapes = {"small": (40, 64 * KiB), "large": (2, 4 * MiB)}
        mem_counts: tuple[int, ...] = (1_000, 10_000)
    else:
        shapes = {"small": (400, 64 * KiB), "large": (8, 32 * MiB)}
        mem_counts = (10_000, 100_000)
    tmpfs = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rst-trees-", dir=tmpfs))
    print(f"tree benchmark in {workdir}: {trials} trials per side, ABBA order", flush=True)

    from importlib.metadata import version

    results: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "machine": f"{os.cpu_count()} CPU ({cpu()})",
            "platform": platform.platform(),
            "remote_store": version("remote-store"),
            "remote_store_transfer": rst.__version__,
            "git": git_rev(),
            "rclone": _rclone_version(),
            "trials": trials,
            "workers": WORKERS,
            "quick": args.quick,
            "timeout_s": args.timeout,
            "load_before": load(),
        },
        "cases": {},
        "notes": [],
    }
    notes: list[str] = results["notes"]
    trees = {key: Tree(key, count, size, workdir / "trees" / key) for key, (count, size) in shapes.items()}
    try:
        for tree in trees.values():
            tree.make()
        with contextlib.ExitStack() as stack:
            moto_server = stack.enter_context(MotoServer(workdir / "moto").running())
            moto = Moto(moto_server)
            ssh: SshServer | None = None
            if not args.no_sftp:
                try:
                    ssh = stack.enter_context(SshServer(workdir / "ssh").running())
                except Exception as exc:  # noqa: BLE001 - reported; S3 still runs
                    notes.append(f"local -> SFTP skipped: sshd did not start: {type(exc).__name__}: {exc}")
            conf = rclone_config(workdir / "rclone.conf", moto_server, ssh)
            for tree in trees.values():
                moto.put_tree(tree)
            upload, download, pa_notes = s3_routes(moto, conf, workdir, not args.no_pyarrow)
            routes = [upload, download]
            if ssh is not None:
                routes.append(sftp_route(ssh, conf))
            for route in routes:
                for tree in trees.values():
                    sides = [s for s in route.sides if tree.key == "small" or s not in SMALL_ONLY]
                    print(f"  {route.name}, {tree.name}: {', '.join(sides)} ...", flush=True)
                    began = time.perf_counter()
                    rows = measure(route, tree, sides, trials, moto, args.timeout)
                    print(f"    {time.perf_counter() - began:.1f} s", flush=True)
                    for side, note in route.notes.items():
                        if tree.key == "small":
                            rows[side] = {"error": note}
                    case = {"tree": tree.name, "sides": rows, "load_after": load()}
                    results["cases"].setdefault(route.name, {})[tree.key] = case
            if pa_notes:
                notes.append(f"S3PyArrowBackend: {next(iter(pa_notes.values()))}")
        if not args.no_memory:
            print(f"  memory per file at {', '.join(f'{c:,}' for c in mem_counts)} files ...", flush=True)
            began = time.perf_counter()
            results["memory"] = bench_memory(mem_counts)
            print(f"    {time.perf_counter() - began:.1f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    meta = results["meta"]
    meta["load_after"] = load()
    # The run itself keeps both cores busy (its servers, 16 workers, rclone: a load of 2 to 2.5 on its own).
    loads = [c["load_after"] for cases in results["cases"].values() for c in cases.values()]
    meta["busy"] = meta["load_before"] > BUSY_BEFORE or max(loads, default=0.0) > BUSY_DURING
    if ABANDONED:
        notes.append(f"{len(ABANDONED)} run(s) still hung after their store was closed: {', '.join(ABANDONED)}")
    results["targets"] = check_targets(results)
    report = render_markdown(results)
    print()
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(report)
    print(f"wrote {args.json} and {args.markdown}")
    missed = [c["target"] for c in results["targets"] if not c["pass"]]
    print(f"{len(missed)} target(s) missed" if missed else "all targets met")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    code = main()
    if ABANDONED:  # a hung run's threads would block the interpreter's exit
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)
