"""The hook contract: order, exactly-once post_transfer, veto, chunks, context, isolation."""

from __future__ import annotations

import io
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest
from remote_store import AlreadyExists, Capability, CapabilityNotSupported, NotFound, Store
from remote_store.backends import MemoryBackend

import remote_store_transfer
from remote_store_transfer import TransferContext, TransferManager, hookimpl
from remote_store_transfer.streaming import ChunkReader

from support import RecordingBackend

MiB = 1_048_576


class Recorder:
    """Records every hook call; optionally raises in one of them."""

    def __init__(self, raise_in: str | None = None, exc: BaseException | None = None, after_chunks: int = 0):
        self.events: list[tuple[Any, ...]] = []
        self.contexts: list[TransferContext] = []
        self.data = bytearray()
        self.raise_in = raise_in
        self.exc = exc or RuntimeError(f"plugin failed in {raise_in}")
        self.after_chunks = after_chunks
        self.chunks = 0

    @hookimpl
    def pre_transfer(self, context: TransferContext) -> None:
        self.events.append(("pre", context.operation))
        self.contexts.append(context)
        if self.raise_in == "pre_transfer":
            raise self.exc

    @hookimpl
    def on_chunk(self, context: TransferContext, nbytes: int, data: Any) -> None:
        assert nbytes == len(data) if isinstance(data, bytes) else nbytes == memoryview(data).nbytes
        self.events.append(("chunk", nbytes, context.bytes_transferred))
        self.data += data
        self.chunks += 1
        if self.raise_in == "on_chunk" and self.chunks > self.after_chunks:
            raise self.exc

    @hookimpl
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        self.events.append(("post", error))
        if self.raise_in == "post_transfer":
            raise self.exc

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e[0] == kind)


def _run_each(manager: TransferManager, store: Store, local: Path, tmp: Path, op: str, **kw: Any) -> None:
    if op == "upload":
        manager.upload(store, local, "dst.bin", **kw)
    elif op == "download":
        manager.download(store, "src.bin", tmp / "down.bin", **kw)
    else:
        manager.transfer(store, "src.bin", store, "dst.bin", **kw)


OPS = ["upload", "download", "transfer"]


@pytest.mark.parametrize("op", OPS)
def test_hooks_fire_in_order_exactly_once_with_every_chunk(op, make_file, tmp_path):
    content = bytes(range(256)) * (9 * 1024 + 3)  # ~2.3 MiB
    local = make_file("src.bin", content)
    store = Store(backend=MemoryBackend())
    store.write("src.bin", content)
    rec = Recorder()
    progress: list[int] = []
    _run_each(TransferManager([rec]), store, local, tmp_path, op, on_progress=progress.append)

    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "pre" and kinds[-1] == "post" and set(kinds[1:-1]) == {"chunk"}
    assert rec.count("pre") == 1 and rec.count("post") == 1
    assert rec.events[-1] == ("post", None)
    assert bytes(rec.data) == content  # chunks arrive in order, nothing lost or repeated
    sizes = [e[1] for e in rec.events if e[0] == "chunk"]
    assert sizes == progress and 0 not in sizes
    running = [e[2] for e in rec.events if e[0] == "chunk"]
    assert running == [sum(sizes[: i + 1]) for i in range(len(sizes))]
    (context,) = rec.contexts
    assert context.bytes_transferred == len(content)


@pytest.mark.parametrize("op", OPS)
def test_pre_transfer_veto_moves_nothing_and_propagates_unchanged(op, make_file, tmp_path):
    backend = RecordingBackend()
    backend.write("src.bin", b"data")
    backend.calls.clear()
    store = Store(backend=backend)
    veto = PermissionError("denied by test policy")
    rec = Recorder("pre_transfer", veto)
    with pytest.raises(PermissionError) as info:
        _run_each(TransferManager([rec]), store, make_file("src.bin", b"data"), tmp_path, op)
    assert info.value is veto
    assert "read" not in backend.calls and "write" not in backend.calls
    assert not backend.exists("dst.bin")
    assert not (tmp_path / "down.bin").exists()
    assert rec.events == [("pre", op), ("post", veto)]


@pytest.mark.parametrize(
    ("op", "case", "expected"),
    [
        ("download", "missing source", NotFound),
        ("transfer", "missing source", NotFound),
        ("upload", "destination exists", AlreadyExists),
        ("transfer", "destination exists", AlreadyExists),
        ("download", "source fails mid-stream", ConnectionResetError),
        ("transfer", "source fails mid-stream", ConnectionResetError),
        ("upload", "on_chunk raises", RuntimeError),
        ("download", "on_chunk raises", RuntimeError),
        ("transfer", "on_chunk raises", RuntimeError),
        ("upload", "KeyboardInterrupt", KeyboardInterrupt),
        ("download", "KeyboardInterrupt", KeyboardInterrupt),
        ("transfer", "KeyboardInterrupt", KeyboardInterrupt),
        ("upload", "capability missing", CapabilityNotSupported),
        ("download", "capability missing", CapabilityNotSupported),
    ],
)
def test_post_transfer_fires_once_with_the_error_on_every_failure_path(op, case, expected, make_file, tmp_path):
    content = b"m" * (3 * MiB)
    backend = RecordingBackend(
        fail_after=MiB if case == "source fails mid-stream" else None,
        without={Capability.READ, Capability.WRITE} if case == "capability missing" else None,
    )
    if case != "missing source":
        MemoryBackend.write(backend, "src.bin", content)
    if case == "destination exists":
        MemoryBackend.write(backend, "dst.bin", b"old")
    rec = {
        "on_chunk raises": Recorder("on_chunk", after_chunks=1),
        "KeyboardInterrupt": Recorder("on_chunk", KeyboardInterrupt(), after_chunks=1),
    }.get(case, Recorder())
    with pytest.raises(expected) as info:
        _run_each(TransferManager([rec]), Store(backend=backend), make_file("src.bin", content), tmp_path, op)
    assert rec.count("pre") == 1
    assert rec.count("post") == 1
    assert rec.events[-1] == ("post", info.value)
    assert all(s.closed_by_caller for s in backend.streams)
    if case != "capability missing":  # the operation and the path are named on the error
        assert any(op in note and "src.bin" in note for note in getattr(info.value, "__notes__", []))
    else:
        assert type(info.value) is CapabilityNotSupported


def test_post_transfer_raising_on_success_fails_the_call_and_later_plugins_see_it(make_file):
    class Verifier:
        @hookimpl(tryfirst=True)
        def post_transfer(self, context, error):
            assert error is None
            raise ValueError("digest mismatch")

    auditor = Recorder()
    store = Store(backend=MemoryBackend())
    with pytest.raises(ValueError, match="digest mismatch") as info:
        TransferManager([auditor, Verifier()]).upload(store, make_file("a.bin", b"x"), "a.bin")
    assert auditor.events[-1] == ("post", info.value)  # the auditor records the rejection


def test_post_transfer_raising_after_a_failure_keeps_the_original_error(make_file, caplog):
    class Broken:
        @hookimpl
        def post_transfer(self, context, error):
            raise OSError("audit disk full")

    store = Store(backend=MemoryBackend())
    store.write("a.bin", b"old")
    later = Recorder()  # registered first, so called after Broken (pluggy calls LIFO)
    manager = TransferManager([later, Broken()])
    with caplog.at_level(logging.ERROR, logger="remote_store_transfer"), pytest.raises(AlreadyExists) as info:
        manager.upload(store, make_file("a.bin", b"new"), "a.bin")
    assert any("audit disk full" in note and "Broken" in note for note in info.value.__notes__)
    assert "audit disk full" in caplog.text
    assert later.events[-1] == ("post", info.value)  # one broken plugin does not silence another


def test_on_chunk_data_is_read_only(tmp_path, make_file):
    attempts: list[str] = []

    class Mutator:
        @hookimpl
        def on_chunk(self, data):
            try:
                memoryview(data)[0] = 0
                attempts.append("mutated")
            except TypeError:
                attempts.append("read-only")

    store = Store(backend=MemoryBackend())
    store.write("a.bin", b"abc" * 1000)
    manager = TransferManager([Mutator()])
    manager.download(store, "a.bin", tmp_path / "a.bin")
    manager.upload(store, make_file("b.bin", b"xyz" * 1000), "b.bin")
    assert attempts and set(attempts) == {"read-only"}
    assert (tmp_path / "a.bin").read_bytes() == b"abc" * 1000


def test_context_fields(make_file, tmp_path):
    rec = Recorder()
    manager = TransferManager([rec])
    store = Store(backend=MemoryBackend()).child("area")
    local = make_file("a.bin", 1234)
    progress = lambda n: None  # noqa: E731
    before = datetime.now(UTC)
    manager.upload(store, local, "a.bin", on_progress=progress)
    manager.download(store, "a.bin", tmp_path / "b.bin", overwrite=True)
    manager.transfer(store, "a.bin", store, "c.bin", atomic=True)
    up, down, xfer = rec.contexts

    assert (up.operation, down.operation, xfer.operation) == ("upload", "download", "transfer")
    assert up.source.is_local and up.source.path == str(local) and up.source.store is None
    assert up.destination.store is store and up.destination.path == "a.bin"
    assert "root_path='area'" in up.destination.describe() and up.destination.describe().endswith(":a.bin")
    assert down.destination.describe() == f"local:{tmp_path / 'b.bin'}"
    assert (up.size, down.size, xfer.size) == (1234, None, None)
    assert (up.overwrite, down.overwrite, xfer.overwrite) == (False, True, False)
    assert (up.atomic, xfer.atomic) == (False, True)
    assert up.on_progress is progress and down.on_progress is None
    assert all(c.bytes_transferred == 1234 for c in (up, down, xfer))
    assert len({c.id for c in (up, down, xfer)}) == 3
    assert all(before <= c.started_at <= datetime.now(UTC) for c in (up, down, xfer))
    assert up.started_at.tzinfo is UTC and up.elapsed() >= 0
    assert up.state is not down.state and up.state == {}
    assert up.write_result is not None and up.write_result.size == 1234
    assert "upload" in repr(up) and "a.bin" in up.describe()


def test_state_dict_is_per_call(make_file):
    class Counter:
        @hookimpl
        def pre_transfer(self, context):
            context.state["counter.chunks"] = 0

        @hookimpl
        def on_chunk(self, context):
            context.state["counter.chunks"] += 1

        @hookimpl
        def post_transfer(self, context):
            totals.append(context.state["counter.chunks"])

    totals: list[int] = []
    manager = TransferManager([Counter()])
    store = Store(backend=MemoryBackend())
    manager.upload(store, make_file("a.bin", 200_000), "a.bin")
    manager.upload(store, make_file("b.bin", 10), "b.bin")
    assert totals == [4, 1]


def test_plugin_implementing_only_some_arguments(make_file):
    seen: list[str] = []

    class Minimal:
        @hookimpl
        def post_transfer(self, error):
            seen.append(repr(error))

    TransferManager([Minimal()]).upload(Store(backend=MemoryBackend()), make_file("a.bin", 3), "a.bin")
    assert seen == ["None"]


def test_chunk_observer_without_on_progress_wraps_the_source(make_file):
    backend = RecordingBackend()
    TransferManager([Recorder()]).upload(Store(backend=backend), make_file("a.bin", 10), "a.bin")
    assert isinstance(backend.written[0], ChunkReader)


def test_no_chunk_observer_means_bytes_are_still_counted(make_file, tmp_path):
    class PostOnly:
        @hookimpl
        def post_transfer(self, context):
            totals.append(context.bytes_transferred)

    totals: list[int] = []
    backend = RecordingBackend()
    manager = TransferManager([PostOnly()])
    store = Store(backend=backend)
    manager.upload(store, make_file("a.bin", 70_000), "a.bin")
    manager.transfer(store, "a.bin", store, "b.bin")
    manager.download(store, "a.bin", tmp_path / "back.bin")
    assert type(backend.written[0]) is io.BufferedReader  # no wrapper was needed
    assert totals == [70_000, 70_000, 70_000]


def test_progress_plugin_is_built_in_and_cannot_be_blocked():
    manager = TransferManager()
    (info,) = manager.list_plugins()
    assert (info.name, info.builtin, info.distribution) == ("progress", True, "remote-store-transfer")
    with pytest.raises(ValueError, match="progress"):
        manager.block("progress")
    with pytest.raises(ValueError, match="progress"):
        remote_store_transfer.block_plugin("progress")


def test_invalid_plugins_are_rejected_at_registration():
    class Typo:
        @hookimpl
        def on_chunks(self, context):  # no such hook
            pass

    class BadArgs:
        @hookimpl
        def on_chunk(self, context, size):  # 'size' is not an argument of on_chunk
            pass

    class WrapsPost:
        @hookimpl(wrapper=True)
        def post_transfer(self, context, error):
            return (yield)

    manager = TransferManager()
    for plugin, words in [(Typo(), "unknown hook"), (BadArgs(), "size"), (WrapsPost(), "wrapper")]:
        with pytest.raises(pluggy.PluginValidationError, match=words):
            manager.register(plugin)
    assert [p.name for p in manager.list_plugins()] == ["progress"]


class _WrapsPostBatch:
    @hookimpl(wrapper=True)
    def post_batch(self, batch, result):
        return (yield)


class _OldStyleWrapsPostBatch:
    @hookimpl(hookwrapper=True)
    def post_batch(self, batch, result):
        yield


class _WrapsPostDelete:
    @hookimpl(wrapper=True)
    def post_delete(self, context, error):
        return (yield)


@pytest.mark.parametrize("plugin_class", [_WrapsPostBatch, _OldStyleWrapsPostBatch, _WrapsPostDelete])
def test_a_wrapper_of_an_ending_hook_is_refused_at_registration(plugin_class, tmp_path):
    """post_batch / post_delete are called one implementation at a time: a wrapper would register and never run."""
    hook = next(name for name in ("post_batch", "post_delete") if hasattr(plugin_class, name))
    manager = TransferManager()
    with pytest.raises(pluggy.PluginValidationError, match=f"{hook} cannot be a wrapper"):
        manager.register(plugin_class(), name="wraps")
    assert [p.name for p in manager.list_plugins()] == ["progress"]
    with pytest.raises(pluggy.PluginValidationError, match=f"{hook} cannot be a wrapper"):
        remote_store_transfer.plugin_manager().register(plugin_class(), name="wraps")
    assert not remote_store_transfer.plugin_manager().has_plugin("wraps")


def test_post_transfer_order_respects_tryfirst_and_trylast(make_file):
    order: list[str] = []

    class First:
        @hookimpl(tryfirst=True)
        def post_transfer(self):
            order.append("first")

    class Last:
        @hookimpl(trylast=True)
        def post_transfer(self):
            order.append("last")

    class Plain:
        @hookimpl
        def post_transfer(self):
            order.append("plain")

    TransferManager([Last(), Plain(), First()]).upload(Store(backend=MemoryBackend()), make_file("a", 1), "a")
    assert order == ["first", "plain", "last"]


def test_isolated_manager_does_not_touch_the_global_one(make_file):
    rec = Recorder()
    isolated = TransferManager([rec])
    store = Store(backend=MemoryBackend())
    remote_store_transfer.upload(store, make_file("a.bin", 5), "a.bin")
    assert rec.events == []
    assert rec not in remote_store_transfer.plugin_manager().get_plugins()
    isolated.upload(store, make_file("b.bin", 5), "b.bin")
    assert rec.count("post") == 1


def test_register_and_unregister_take_effect_on_the_next_call(make_file):
    rec = Recorder()
    manager = TransferManager()
    store = Store(backend=MemoryBackend())
    manager.upload(store, make_file("a", 5), "a")
    manager.register(rec, name="rec")
    manager.upload(store, make_file("b", 5), "b")
    manager.unregister(name="rec")
    manager.upload(store, make_file("c", 5), "c")
    assert rec.count("post") == 1
    assert [p.name for p in manager.list_plugins()] == ["progress"]


def test_global_manager_is_built_once_under_concurrency():
    got: list[object] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        got.append(remote_store_transfer.plugin_manager())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 16 and len({id(pm) for pm in got}) == 1


def test_global_functions_use_global_plugins(make_file):
    rec = Recorder()
    remote_store_transfer.plugin_manager().register(rec)
    remote_store_transfer.upload(Store(backend=MemoryBackend()), make_file("a", 5), "a")
    assert rec.count("pre") == rec.count("post") == 1


def test_started_is_wall_clock(make_file):
    rec = Recorder()
    now = time.time()
    TransferManager([rec]).upload(Store(backend=MemoryBackend()), make_file("a", 1), "a")
    assert abs(rec.contexts[0].started - now) < 60


def test_a_blocked_builtin_is_still_listed_as_built_in():
    manager = TransferManager(blocked=["audit", "acme"])
    listed = {p.name: p for p in manager.list_plugins()}
    assert listed["audit"].blocked
    assert listed["audit"].builtin
    assert listed["audit"].distribution == "remote-store-transfer"
    assert listed["acme"].blocked
    assert not listed["acme"].builtin
    assert listed["acme"].distribution is None
