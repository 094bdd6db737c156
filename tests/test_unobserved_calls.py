"""A transfer that no hook and no ``capture()`` sees builds no context; it must behave as one that does.

With the default plugins (only ``progress``), ``transfer`` skips the
:class:`~remote_store_transfer.TransferContext` and calls ``on_progress``
directly (a per-call saving). These tests run the same calls through that
path and through the full one (a manager with a ``post_transfer`` plugin)
and compare what the caller sees.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import SameFileError, TransferManager, capture, hookimpl
from remote_store_transfer import locations as locations_module

from support import RecordingBackend

MiB = 1_048_576


class PostOnly:
    """Sees every call (so the full path runs) without observing chunks."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def post_transfer(self) -> None:
        self.calls += 1


def _failing_transfer(manager: TransferManager, on_progress: Any) -> tuple[list[str], list[int], str]:
    source, destination = Store(backend=RecordingBackend(fail_after=MiB)), Store(backend=MemoryBackend())
    source.write("src.bin", os.urandom(3 * MiB))
    progress: list[int] = []
    callback = progress.append if on_progress else None
    with pytest.raises(ConnectionResetError) as caught:
        manager.transfer(source, "src.bin", destination, "dst.bin", on_progress=callback)
    return caught.value.__notes__, progress, f"{source!r}:src.bin -> {destination!r}:dst.bin"


@pytest.mark.parametrize("on_progress", [False, True], ids=["plain", "on_progress"])
def test_a_failure_reads_the_same_with_and_without_a_context(on_progress: bool) -> None:
    plugin = PostOnly()
    bare_notes, bare_progress, ends = _failing_transfer(TransferManager(), on_progress)
    full_notes, full_progress, full_ends = _failing_transfer(TransferManager([plugin]), on_progress)
    assert plugin.calls == 1
    assert bare_progress == full_progress
    moved = sum(full_progress)
    assert bare_notes == [f"during transfer {ends} after {moved} bytes"]
    assert full_notes == [f"during transfer {full_ends} after {moved} bytes"]
    assert (moved > 0) is on_progress


def test_on_progress_is_called_per_read_as_through_the_hook() -> None:
    source = Store(backend=MemoryBackend())
    source.write("src.bin", os.urandom(3 * MiB + 7))
    bare: list[int] = []
    full: list[int] = []
    TransferManager().transfer(source, "src.bin", source, "a.bin", on_progress=bare.append)
    TransferManager([PostOnly()]).transfer(source, "src.bin", source, "b.bin", on_progress=full.append)
    assert bare == full
    assert sum(bare) == 3 * MiB + 7
    assert 0 not in bare
    assert source.read_bytes("a.bin") == source.read_bytes("src.bin")


def test_a_capture_still_gets_the_context_of_an_unobserved_call() -> None:
    store = Store(backend=MemoryBackend())
    store.write("src.bin", b"x" * 10)
    with capture() as transfers:
        TransferManager().transfer(store, "src.bin", store, "dst.bin", on_progress=lambda n: None)
    assert [(t.operation, t.bytes_transferred) for t in transfers] == [("transfer", 10)]


def test_hook_call_monitoring_still_sees_on_progress_chunks() -> None:
    store = Store(backend=MemoryBackend())
    store.write("src.bin", b"x" * 10)
    seen: list[str] = []
    manager = TransferManager()
    manager.plugin_manager.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *a: None)
    got: list[int] = []
    manager.transfer(store, "src.bin", store, "dst.bin", on_progress=got.append)
    assert seen == ["on_chunk"]
    assert got == [10]


def test_without_the_progress_plugin_on_progress_stays_silent_as_before() -> None:
    store = Store(backend=MemoryBackend())
    store.write("src.bin", b"x" * 10)
    manager = TransferManager()
    manager.unregister(name="progress")
    got: list[int] = []
    manager.transfer(store, "src.bin", store, "dst.bin", on_progress=got.append)
    assert got == []
    assert store.read_bytes("dst.bin") == b"x" * 10


def test_the_same_file_is_refused_on_the_unobserved_path_too() -> None:
    store = Store(backend=MemoryBackend())
    store.write("d/a.bin", b"keep me")
    with pytest.raises(SameFileError):
        TransferManager().transfer(store, "d/a.bin", store.child("d"), "a.bin", overwrite=True)
    assert store.read_bytes("d/a.bin") == b"keep me"


def test_the_per_store_lookups_go_with_their_stores() -> None:
    """The same-file check remembers stores by id(): an entry must go with its store, or a new one could inherit it."""
    gc.collect()
    places, apart = len(locations_module._places), len(locations_module._apart)
    for _ in range(50):
        a, b = Store(backend=MemoryBackend()), Store(backend=MemoryBackend())
        a.write("f", b"1")
        TransferManager().transfer(a, "f", b, "f")
    del a, b
    gc.collect()
    assert (len(locations_module._places), len(locations_module._apart)) == (places, apart)
