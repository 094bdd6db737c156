"""The ``on_chunk`` fast path (``Dispatch.chunk``) behaves exactly as pluggy's own hook call.

``Dispatch.chunk`` calls implementations directly instead of through
``HookCaller(**kwargs)``. These tests run the same plugins both ways and
compare: argument subsets and orders, call order (registration order,
``tryfirst`` / ``trylast``), exceptions, wrappers, and hook-call monitoring.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_store import Store

from remote_store_transfer import TransferContext, TransferManager, hookimpl
from remote_store_transfer.context import Endpoint
from remote_store_transfer.streaming import ChunkReader

MiB = 1_048_576


class Args:
    """One ``on_chunk`` implementation of a given argument shape; records what it got into a shared log."""

    def __init__(self, log: list[tuple[Any, ...]], name: str, shape: str, **opts: bool) -> None:
        def all_args(context: TransferContext, nbytes: int, data: Any) -> None:
            log.append((name, context.operation, nbytes, bytes(data)))

        def context_nbytes(context: TransferContext, nbytes: int) -> None:
            log.append((name, context.operation, nbytes))

        def context_data(context: TransferContext, data: Any) -> None:
            log.append((name, context.operation, bytes(data)))

        def data_context(data: Any, context: TransferContext) -> None:
            log.append((name, bytes(data), context.operation))

        def nbytes_only(nbytes: int) -> None:
            log.append((name, nbytes))

        def no_args() -> None:
            log.append((name,))

        function = {
            "all": all_args,
            "context,nbytes": context_nbytes,
            "context,data": context_data,
            "data,context": data_context,
            "nbytes": nbytes_only,
            "none": no_args,
        }[shape]
        self.on_chunk = hookimpl(specname="on_chunk", **opts)(function)


def _context() -> TransferContext:
    return TransferContext("upload", Endpoint(None, "a"), Endpoint(None, "b"), overwrite=False, on_progress=None)


def _both_ways(plugins_for: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The log of one chunk through ``Dispatch.chunk`` and through the pluggy hook caller."""
    fast: list[tuple[Any, ...]] = []
    slow: list[tuple[Any, ...]] = []
    chunk = TransferManager(plugins_for(fast)).plugin_manager.dispatch.chunk
    caller = TransferManager(plugins_for(slow)).plugin_manager.hook.on_chunk
    context = _context()
    chunk(context, 3, b"abc")
    caller(context=context, nbytes=3, data=b"abc")
    return fast, slow


SHAPES = ["all", "context,nbytes", "context,data", "data,context", "nbytes", "none"]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_argument_shape_gets_what_it_asks_for(shape: str) -> None:
    fast, slow = _both_ways(lambda log: [Args(log, "p", shape)])
    assert fast == slow
    assert len(fast) == 1


@pytest.mark.parametrize("count", [2, 3, 5])
def test_several_implementations_run_in_pluggy_order(count: int) -> None:
    def plugins(log: list[tuple[Any, ...]]) -> list[Args]:
        return [Args(log, f"p{i}", SHAPES[i % len(SHAPES)]) for i in range(count)]

    fast, slow = _both_ways(plugins)
    assert fast == slow
    assert [entry[0] for entry in fast] == [f"p{i}" for i in reversed(range(count))]  # last registered first


def test_tryfirst_and_trylast_are_respected() -> None:
    def plugins(log: list[tuple[Any, ...]]) -> list[Args]:
        return [
            Args(log, "first", "all", tryfirst=True),
            Args(log, "plain-1", "nbytes"),
            Args(log, "last", "none", trylast=True),
            Args(log, "plain-2", "context,data"),
        ]

    fast, slow = _both_ways(plugins)
    assert fast == slow
    assert [entry[0] for entry in fast] == ["first", "plain-2", "plain-1", "last"]


def test_an_exception_stops_later_implementations_and_propagates_unchanged() -> None:
    error = RuntimeError("budget exceeded")

    class Raiser:
        @hookimpl
        def on_chunk(self, nbytes: int) -> None:
            raise error

    log: list[tuple[Any, ...]] = []
    # pluggy order: Raiser (registered last) runs first, so "after" is never called.
    manager = TransferManager([Args(log, "after", "all"), Raiser()])
    with pytest.raises(RuntimeError) as info:
        manager.plugin_manager.dispatch.chunk(_context(), 3, b"abc")
    assert info.value is error
    assert log == []


def test_a_wrapper_implementation_goes_through_pluggy() -> None:
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def on_chunk(self, nbytes: int) -> Iterator[None]:
            seen.append(f"before {nbytes}")
            result = yield
            seen.append(f"after {nbytes}")
            return result

    log: list[tuple[Any, ...]] = []
    manager = TransferManager([Args(log, "inner", "nbytes"), Wrapper()])
    manager.plugin_manager.dispatch.chunk(_context(), 7, b"1234567")
    assert seen == ["before 7", "after 7"]
    assert log == [("inner", 7)]


def test_hook_call_monitoring_sees_every_chunk_and_undo_restores_the_fast_path(
    local_store: Store, make_file: Any, tmp_path: Path
) -> None:
    source = make_file("src.bin", 3 * MiB + 5)
    calls: list[dict[str, Any]] = []

    def before(name: str, impls: Any, kwargs: Any) -> None:
        if name == "on_chunk":
            calls.append(dict(kwargs))

    def after(outcome: Any, name: str, impls: Any, kwargs: Any) -> None:
        pass

    log: list[tuple[Any, ...]] = []
    manager = TransferManager([Args(log, "p", "nbytes")])
    fast_chunk = manager.plugin_manager.dispatch.chunk
    undo = manager.plugin_manager.add_hookcall_monitoring(before, after)
    manager.download(local_store, _put(local_store, source), tmp_path / "out.bin")
    assert [c["nbytes"] for c in calls] == [MiB, MiB, MiB, 5]
    assert [entry[1] for entry in log] == [MiB, MiB, MiB, 5]
    undo()
    calls.clear()
    manager.download(local_store, "src.bin", tmp_path / "out.bin", overwrite=True)
    assert calls == []  # no longer monitored
    assert manager.plugin_manager.dispatch.chunk is not fast_chunk  # rebuilt, and direct again
    assert len(log) == 8


def _put(store: Store, path: Path) -> str:
    store.write("src.bin", path.read_bytes(), overwrite=True)
    return "src.bin"


def test_registering_after_a_dispatch_was_built_rebuilds_it() -> None:
    log: list[tuple[Any, ...]] = []
    manager = TransferManager([Args(log, "one", "nbytes")])
    manager.plugin_manager.dispatch.chunk(_context(), 1, b"x")
    manager.register(Args(log, "two", "nbytes"))
    manager.plugin_manager.dispatch.chunk(_context(), 2, b"xy")
    assert log == [("one", 1), ("two", 2), ("one", 2)]


def test_no_implementation_at_all_is_a_no_op() -> None:
    manager = TransferManager()
    manager.unregister(name="progress")
    manager.plugin_manager.dispatch.chunk(_context(), 1, b"x")  # does not raise


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_chunk_reader_counts_every_kind_of_read_result(kind: type) -> None:
    class Inner(io.RawIOBase):
        def __init__(self) -> None:
            self.left = [b"abc", b"de"]

        def read(self, size: int = -1) -> Any:
            return kind(self.left.pop(0)) if self.left else kind(b"")

    got: list[tuple[int, bytes]] = []
    context = _context()
    reader = ChunkReader(Inner(), context, lambda ctx, nbytes, data: got.append((nbytes, bytes(data))))
    while reader.read(10):
        pass
    assert got == [(3, b"abc"), (2, b"de")]
    assert context.bytes_transferred == 5


def test_upload_with_a_plugin_of_every_shape_matches_the_file(local_store: Store, make_file: Any) -> None:
    source = make_file("big.bin", 2 * MiB + 17)
    log: list[tuple[Any, ...]] = []
    progress: list[int] = []
    manager = TransferManager(
        [Args(log, "all", "all"), Args(log, "cd", "context,data"), Args(log, "dc", "data,context")]
    )
    manager.upload(local_store, source, "big.bin", on_progress=progress.append)
    body = source.read_bytes()
    assert b"".join(entry[3] for entry in log if entry[0] == "all") == body
    assert b"".join(entry[2] for entry in log if entry[0] == "cd") == body
    assert b"".join(entry[1] for entry in log if entry[0] == "dc") == body
    assert sum(progress) == len(body)
    assert local_store.read_bytes("big.bin") == body
