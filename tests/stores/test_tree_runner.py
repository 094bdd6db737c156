"""How files run: workers and executors, progress and per-file callbacks, retries, fail-fast, bandwidth, interrupts.

Synchronisation is by events and barriers (with timeouts that only turn a
hang into a failure), never by sleeping; times are only bounded from below.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from remote_store import BackendUnavailable, NotFound, RetryPolicy, Store
from remote_store.backends import LocalBackend, MemoryBackend
from storekit import MIB, STORE_KINDS
from treekit import (
    BatchRecorder,
    Deny,
    FlakyLocalBackend,
    FlakyMemoryBackend,
    FlakyS3Backend,
    FlakySFTPBackend,
    Outcomes,
    all_names,
    read_local,
    read_store,
    write_local,
    write_store,
)

from remote_store_transfer import (
    IntegrityError,
    TransferDenied,
    TransferManager,
    download_tree,
    hookimpl,
    transfer_tree,
    upload_tree,
)

WAIT = 20.0
"""Seconds an event or barrier waits before the test fails (a hang turned into a failure, never a pace)."""


def small_files(n: int, prefix: str = "f") -> dict[str, bytes]:
    return {f"{prefix}{i:02d}.txt": f"file number {i}\n".encode() * (i + 1) for i in range(n)}


# region: workers and executors


class InFlight:
    """Counts the files between pre_transfer and post_transfer; every group of *parties* files meets at a barrier.

    The barrier makes *parties* files be in flight at once (deterministically,
    without sleeping) when the engine allows it, and times out when it does not.
    """

    def __init__(self, parties: int) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.barrier = threading.Barrier(parties, timeout=WAIT)
        self.threads: set[str] = set()

    @hookimpl
    def pre_transfer(self) -> None:
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
            self.threads.add(threading.current_thread().name)
        self.barrier.wait()

    @hookimpl
    def post_transfer(self) -> None:
        with self.lock:
            self.now -= 1


def test_max_workers_bounds_the_files_in_flight(tmp_path: Path) -> None:
    files = small_files(12)  # four groups of three
    src = write_local(tmp_path / "src", files)
    in_flight = InFlight(3)
    store = Store(backend=MemoryBackend())

    result = TransferManager([in_flight]).upload_tree(store, src, "dst", max_workers=3)

    assert result.ok, result.failed
    assert in_flight.max == 3  # reached (the barrier needs three at once) and never passed
    assert in_flight.now == 0
    assert read_store(store, "dst") == files


def test_one_worker_runs_one_file_at_a_time(tmp_path: Path) -> None:
    files = small_files(5)
    src = write_local(tmp_path / "src", files)
    in_flight = InFlight(1)
    store = Store(backend=MemoryBackend())
    assert TransferManager([in_flight]).upload_tree(store, src, "dst", max_workers=1).ok
    assert in_flight.max == 1


def test_a_given_executor_is_used_and_not_shut_down(tmp_path: Path) -> None:
    files = small_files(8)
    src = Store(backend=MemoryBackend())
    write_store(src, "p", files)
    in_flight = InFlight(2)
    dst = Store(backend=MemoryBackend())

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="user-pool") as executor:
        result = TransferManager([in_flight]).transfer_tree(src, "p", dst, "q", executor=executor, max_workers=4)
        assert executor.submit(lambda: 6 * 7).result(timeout=WAIT) == 42  # still usable

    assert result.ok
    assert read_store(dst, "q") == files
    assert in_flight.threads
    assert all(name.startswith("user-pool") for name in in_flight.threads), in_flight.threads


# endregion

# region: callbacks


@pytest.mark.parametrize("direction", ["upload", "download", "transfer"])
def test_on_progress_sums_to_the_bytes_and_on_file_once_per_file(direction: str, tmp_path: Path) -> None:
    files = {
        "big.bin": os.urandom(3 * MIB + 123),
        "mid.bin": os.urandom(MIB + 1),
        "empty.txt": b"",
        "skip.txt": b"already there",
        "deny.txt": b"denied by policy",
        **small_files(6, "sub/s"),
    }
    moved = {k: v for k, v in files.items() if k not in ("skip.txt", "deny.txt")}
    manager = TransferManager([Deny(["deny.txt"], lambda: TransferDenied("test", "no"))])
    store = Store(backend=MemoryBackend())
    chunks: list[int] = []
    lock = threading.Lock()

    def on_progress(n: int) -> None:
        with lock:
            chunks.append(n)

    outcomes = Outcomes()
    options: dict[str, Any] = {"on_progress": on_progress, "on_file": outcomes, "max_workers": 4}
    if direction == "upload":
        src = write_local(tmp_path / "src", files)
        write_store(store, "dst", {"skip.txt": b"x"})
        result = manager.upload_tree(store, src, "dst", **options)
        landed = read_store(store, "dst")
    elif direction == "download":
        write_store(store, "p", files)
        out = write_local(tmp_path / "out", {"skip.txt": b"x"})
        result = manager.download_tree(store, "p", out, **options)
        landed = read_local(out)
    else:
        write_store(store, "p", files)
        dst = Store(backend=MemoryBackend())
        write_store(dst, "q", {"skip.txt": b"x"})
        result = manager.transfer_tree(store, "p", dst, "q", **options)
        landed = read_store(dst, "q")

    total = sum(map(len, moved.values()))
    assert sum(chunks) == total == result.bytes_transferred
    assert all(n > 0 for n in chunks)
    assert landed == {**moved, "skip.txt": b"x"}
    counts = collections.Counter(o.path for o in outcomes.all)
    assert counts == collections.Counter(list(files))  # every file exactly once
    status = {o.path: o.status for o in outcomes.all}
    assert status == {**dict.fromkeys(moved, "transferred"), "skip.txt": "skipped", "deny.txt": "failed"}
    by_path = outcomes.by_path()
    assert by_path["big.bin"].bytes == by_path["big.bin"].size == len(files["big.bin"])
    assert by_path["skip.txt"].reason == "exists"
    assert isinstance(by_path["deny.txt"].error, TransferDenied)
    assert outcomes.threads == {threading.get_ident()}  # on_file runs in the caller's thread


# endregion

# region: retries


@pytest.fixture
def flaky(request: pytest.FixtureRequest, tmp_path: Path):
    """flaky(kind) -> (store, backend): a store whose backend fails on demand (treekit.Flaky)."""
    made: list[Store] = []

    def make(kind: str) -> tuple[Store, Any]:
        prefix = f"t-{uuid.uuid4().hex[:12]}"
        if kind == "memory":
            backend: Any = FlakyMemoryBackend()
        elif kind == "local":
            root = tmp_path / f"flaky-{len(made)}"
            root.mkdir()
            backend = FlakyLocalBackend(root=str(root))
        elif kind == "s3":
            backend = request.getfixturevalue("moto_server").backend("tree-flaky", backend_class=FlakyS3Backend)
        else:
            sshd = request.getfixturevalue("ssh_server")
            backend = sshd.backend(backend_class=FlakySFTPBackend, io_timeout=5.0, retry=RetryPolicy(max_attempts=1))
        root_store = Store(backend=backend)
        made.append(root_store)
        return root_store.child(prefix), backend

    yield make
    for store in made:
        store.close()


def transient(kind: str) -> Any:
    return lambda: BackendUnavailable("the store is down for a moment", path="x", backend=kind)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_transiently_failing_destination_is_retried(kind: str, flaky, tmp_path: Path) -> None:
    """Two failed writes (BackendUnavailable, then ConnectionError), retries=2: the file lands on the third try."""
    files = {"a.txt": b"a" * 100, "b.bin": os.urandom(70_000), "c.txt": b"c"}
    src = write_local(tmp_path / "src", files)
    store, backend = flaky(kind)
    backend.fail_on("b.bin", transient(kind), lambda: ConnectionResetError("reset"), ops=["write"])
    recorder = BatchRecorder()
    outcomes = Outcomes()

    result = TransferManager([recorder]).upload_tree(store, src, "dst", retries=2, on_file=outcomes)

    assert result.ok, result.failed
    assert sorted(result.transferred) == sorted(files)
    assert outcomes.by_path()["b.bin"].attempts == 3
    assert outcomes.by_path()["a.txt"].attempts == 1
    assert backend.calls["b.bin"] == 3
    assert recorder.pre_paths().count("dst/b.bin") == 3  # every try has its own pre/post_transfer
    assert len(recorder.pre) == len(recorder.post) == 5
    assert read_store(store, "dst") == files


@pytest.mark.parametrize("kind", ["memory", "local", "s3"])
def test_a_transiently_failing_source_is_retried(kind: str, flaky) -> None:
    files = {"a.txt": b"a" * 100, "b.bin": os.urandom(70_000)}
    store, backend = flaky(kind)
    write_store(store, "p", files)
    backend.fail_on("b.bin", transient(kind), transient(kind), transient(kind), ops=["read"])
    outcomes = Outcomes()
    dst = Store(backend=MemoryBackend())

    result = transfer_tree(store, "p", dst, "q", retries=3, on_file=outcomes)

    assert result.ok, result.failed
    assert outcomes.by_path()["b.bin"].attempts == 4
    assert read_store(dst, "q") == files


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_without_retries_a_transient_error_fails_the_file(kind: str, flaky, tmp_path: Path) -> None:
    files = {"a.txt": b"a", "b.txt": b"b"}
    src = write_local(tmp_path / "src", files)
    store, backend = flaky(kind)
    backend.fail_on("b.txt", lambda: ConnectionError("refused"), ops=["write"])
    outcomes = Outcomes()

    result = upload_tree(store, src, "dst", retries=0, on_file=outcomes)

    assert list(result.failed) == ["b.txt"]
    assert isinstance(result.failed["b.txt"], ConnectionError)
    assert outcomes.by_path()["b.txt"].attempts == 1
    assert backend.calls["b.txt"] == 1
    assert read_store(store, "dst") == {"a.txt": b"a"}

    again = upload_tree(store, src, "dst")  # the failure was transient: a re-run finishes the tree
    assert again.transferred == ["b.txt"]
    assert read_store(store, "dst") == files


def test_more_transient_failures_than_retries_fail_the_file(flaky, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"a.txt": b"a"})
    store, backend = flaky("memory")
    backend.fail_on("a.txt", *[transient("memory")] * 3, ops=["write"])
    outcomes = Outcomes()
    result = upload_tree(store, src, "dst", retries=2, on_file=outcomes)
    assert isinstance(result.failed["a.txt"], BackendUnavailable)
    assert outcomes.by_path()["a.txt"].attempts == 3
    assert read_store(store, "dst") == {}


class PostFails:
    """A verifier whose post_transfer rejects one file with an IntegrityError."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.calls = 0

    @hookimpl
    def post_transfer(self, context: Any, error: BaseException | None) -> None:
        if error is None and str(context.destination.path).endswith(self.suffix):
            self.calls += 1
            raise IntegrityError("sha256", "aa", "bb", "src", "dst")


@pytest.mark.parametrize("error", ["NotFound", "TransferDenied", "IntegrityError"])
def test_permanent_errors_are_never_retried(error: str, flaky) -> None:
    files = {"a.txt": b"a", "b.txt": b"b"}
    store, backend = flaky("memory")
    write_store(store, "p", files)
    plugins: list[Any] = []
    if error == "NotFound":
        backend.fail_on("b.txt", *[lambda: NotFound("gone", path="b.txt", backend="memory")] * 5, ops=["read"])
    elif error == "TransferDenied":
        plugins.append(Deny(["b.txt"], lambda: TransferDenied("test", "never")))
    else:
        plugins.append(PostFails("b.txt"))
    recorder = BatchRecorder()
    outcomes = Outcomes()
    dst = Store(backend=MemoryBackend())

    result = TransferManager([*plugins, recorder]).transfer_tree(  # the recorder runs first
        store, "p", dst, "q", retries=5, on_file=outcomes
    )

    failed = result.failed["b.txt"]
    assert type(failed).__name__ == error
    assert outcomes.by_path()["b.txt"].attempts == 1
    assert recorder.pre_paths().count("q/b.txt") == 1
    assert result.transferred == ["a.txt"]
    if error == "NotFound":
        assert backend.calls["b.txt"] == 1


# endregion

# region: fail_fast


@pytest.mark.parametrize("fail_fast", [True, False])
def test_fail_fast_starts_no_file_after_the_first_failure(fail_fast: bool, tmp_path: Path) -> None:
    files = small_files(8)  # a local walk goes in name order: f00.txt first
    src = write_local(tmp_path / "src", files)
    store = Store(backend=MemoryBackend())
    recorder = BatchRecorder()
    manager = TransferManager([Deny(["f00.txt"], lambda: TransferDenied("test", "first one fails")), recorder])

    result = manager.upload_tree(store, src, "dst", max_workers=1, fail_fast=fail_fast, retries=0)

    assert list(result.failed) == ["f00.txt"]
    if fail_fast:
        assert result.transferred == []
        assert result.skipped == []
        assert read_store(store, "dst") == {}
        assert recorder.pre_paths() == ["dst/f00.txt"]
    else:
        assert sorted(result.transferred) == sorted(files)[1:]
        assert read_store(store, "dst") == {k: v for k, v in files.items() if k != "f00.txt"}
    assert len(recorder.ended) == 1


# endregion

# region: bandwidth


def test_max_bandwidth_slows_the_whole_tree(tmp_path: Path) -> None:
    """Four files of 256 KiB at (total / 0.5 s): at least half the theoretical time, over all workers together."""
    files = {f"f{i}.bin": os.urandom(256 * 1024) for i in range(4)}
    total = sum(map(len, files.values()))
    rate = total / 0.5
    src = write_local(tmp_path / "src", files)
    store = Store(backend=MemoryBackend())

    started = time.monotonic()
    result = upload_tree(store, src, "dst", max_bandwidth=rate, max_workers=4)
    elapsed = time.monotonic() - started

    assert result.ok
    assert read_store(store, "dst") == files
    # Shared by the four files (a limit per file would take a quarter of this): only a lower bound.
    assert elapsed >= 0.5 * total / rate


@pytest.mark.parametrize("value", [0, 0.0, -1, -1000.5])
def test_max_bandwidth_must_be_positive(value: float, tmp_path: Path) -> None:
    src = write_local(tmp_path / "src", {"a.txt": b"a"})
    store = Store(backend=MemoryBackend())
    with pytest.raises(ValueError, match="max_bandwidth"):
        upload_tree(store, src, "dst", max_bandwidth=value)
    assert read_store(store) == {}


# endregion

# region: interrupts


class Interrupt:
    """Raises KeyboardInterrupt at the *at*-th chunk of the file named *name*, once other files are mid-transfer.

    The other files hold at their first chunk until the interrupt is raised,
    so they are in flight (mid-file) when it comes.
    """

    def __init__(self, name: str, at: int) -> None:
        self.name = name
        self.at = at
        self.lock = threading.Lock()
        self.chunks = 0
        self.others_mid_file = threading.Event()
        self.fired = threading.Event()
        self.batches = 0
        self.ended = 0
        self.result: Any = None

    @hookimpl
    def pre_batch(self) -> None:
        self.batches += 1

    @hookimpl
    def on_chunk(self, context: Any) -> None:
        if not str(context.destination.path).endswith(self.name):
            if not self.fired.is_set():
                self.others_mid_file.set()
                self.fired.wait(WAIT)
            return
        with self.lock:
            self.chunks += 1
            fire = self.chunks == self.at and not self.fired.is_set()
        if fire:
            assert self.others_mid_file.wait(WAIT), "no other file was in flight"
            self.fired.set()
            raise KeyboardInterrupt("Ctrl-C from a plugin")

    @hookimpl
    def post_batch(self, result: Any) -> None:
        self.ended += 1
        self.result = result


INTERRUPTED = {
    "a-big.bin": os.urandom(5 * MIB + 11),  # first in every listing: it is in flight from the start
    "b-mid.bin": os.urandom(3 * MIB),
    "c-mid.bin": os.urandom(2 * MIB + 5),
    **small_files(6, "d-small-"),
}


@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("direction", ["download", "transfer", "upload"])
def test_interrupt_leaves_no_partial_file_and_a_rerun_finishes(direction: str, atomic: bool, tmp_path: Path) -> None:
    interrupt = Interrupt("a-big.bin", at=3)
    manager = TransferManager([interrupt])
    dst_root = tmp_path / "dst"
    dst_root.mkdir()
    source_store = Store(backend=MemoryBackend())
    write_store(source_store, "p", INTERRUPTED)
    src_dir = write_local(tmp_path / "src", INTERRUPTED)
    dst_store = Store(backend=LocalBackend(root=str(dst_root)))

    def run(plugins: TransferManager) -> Any:
        if direction == "download":
            return plugins.download_tree(source_store, "p", dst_root, atomic=atomic, max_workers=3)
        if direction == "transfer":
            return plugins.transfer_tree(source_store, "p", dst_store, "", atomic=atomic, max_workers=3)
        return plugins.upload_tree(dst_store, src_dir, "", atomic=atomic, max_workers=3)

    with pytest.raises(KeyboardInterrupt):
        run(manager)

    assert interrupt.fired.is_set()
    assert interrupt.batches == interrupt.ended == 1  # post_batch ran exactly once
    assert isinstance(interrupt.result.failed["a-big.bin"], KeyboardInterrupt)
    left = read_local(dst_root)  # hidden files too: temp files would show here
    assert set(all_names(dst_root)) == set(left), "something other than a finished file is left"
    for rel, data in left.items():
        assert data == INTERRUPTED[rel], f"{rel} is partial or foreign"
    assert "a-big.bin" not in left
    assert len(left) < len(INTERRUPTED)

    rerun = run(TransferManager())  # the default update="missing" finishes the job
    assert rerun.ok, rerun.failed
    assert sorted(rerun.transferred) == sorted(set(INTERRUPTED) - set(left))
    assert read_local(dst_root) == INTERRUPTED
    assert set(all_names(dst_root)) == set(INTERRUPTED)


def test_keyboard_interrupt_from_on_file_stops_the_tree(tmp_path: Path) -> None:
    """An interrupt in the caller's thread (on_file): no new file starts, post_batch once, KeyboardInterrupt."""
    files = small_files(20)
    src = write_local(tmp_path / "src", files)
    store = Store(backend=MemoryBackend())
    recorder = BatchRecorder()
    seen: list[str] = []

    def on_file(outcome: Any) -> None:
        seen.append(outcome.path)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        TransferManager([recorder]).upload_tree(store, src, "dst", on_file=on_file, max_workers=2)

    assert len(recorder.ended) == 1
    landed = read_store(store, "dst")
    assert all(landed[rel] == files[rel] for rel in landed)
    assert len(landed) < len(files)
    assert len(recorder.pre) <= 4  # the two that ended and at most two in flight


# endregion


# region: a source stream that breaks or ends early


@pytest.mark.parametrize("silent", [False, True])
@pytest.mark.parametrize("atomic", [False, True])
@pytest.mark.parametrize("direction", ["download", "transfer"])
def test_a_source_stream_that_breaks_is_retried_from_the_start(
    direction: str, atomic: bool, silent: bool, flaky, tmp_path: Path
) -> None:
    """The first read of a file drops mid-way (or ends early without an error): the retry writes it whole.

    A broken stream is a ConnectionError; a stream that ends early is caught by
    the listing's size (IncompleteTransferError). Both are transient: the
    retry starts the file afresh, so no partial copy blocks it (a new local
    file is created exclusively) and none is left.
    """
    files = {"big.bin": os.urandom(3 * MIB + 7), "small.txt": b"small"}
    store, backend = flaky("memory")
    write_store(store, "p", files)
    backend.break_reads("big.bin", times=1, after=MIB + 3, silent=silent)
    outcomes = Outcomes()

    if direction == "download":
        out = tmp_path / "out"
        result = download_tree(store, "p", out, atomic=atomic, retries=1, on_file=outcomes)
        landed = read_local(out)
        assert set(all_names(out)) == set(files)  # no temp file left
    else:
        dst = Store(backend=MemoryBackend())
        result = transfer_tree(store, "p", dst, "q", atomic=atomic, retries=1, on_file=outcomes)
        landed = read_store(dst, "q")

    assert result.ok, result.failed
    assert outcomes.by_path()["big.bin"].attempts == 2
    assert landed == files


def test_a_source_that_ends_early_without_retries_leaves_no_short_copy(flaky, tmp_path: Path) -> None:
    files = {"big.bin": os.urandom(2 * MIB), "small.txt": b"small"}
    store, backend = flaky("memory")
    write_store(store, "p", files)
    backend.break_reads("big.bin", times=1, after=MIB, silent=True)
    out = tmp_path / "out"

    result = download_tree(store, "p", out, retries=0)

    assert list(result.failed) == ["big.bin"]
    assert type(result.failed["big.bin"]).__name__ == "IncompleteTransferError"
    assert read_local(out) == {"small.txt": b"small"}  # the short copy was removed
    again = download_tree(store, "p", out)
    assert again.transferred == ["big.bin"]
    assert read_local(out) == files


# endregion
