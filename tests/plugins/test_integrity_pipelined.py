"""The integrity plugin's hashing thread: the digest is hashlib's of the whole file; no thread outlives a call.

Files of more than ``INLINE_FIRST`` + 1 MiB are hashed on a thread of the
transfer's own; the tests check that the thread really ran (a plugin sees it
alive during ``on_chunk``), that the digest matches whatever the chunk sizes,
and that every way a call can fail ends the thread and records no digest.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import threading
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

from remote_store_transfer import TransferManager, capture, enable_plugin
from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.plugin.hashing import INLINE_FIRST, PIPELINE_MIN, THREAD_NAME, PipelinedHasher
from remote_store_transfer.plugin.integrity import Digest, digest_of
from remote_store_transfer.streaming import CHUNK_SIZE

from support import RecordingBackend

PIPELINED = INLINE_FIRST + 3 * CHUNK_SIZE + 12_345  # large enough for the thread, last chunk partial
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, INLINE_FIRST + CHUNK_SIZE + 1, PIPELINED]
ODD_SIZES = (1, 70_001, 3, CHUNK_SIZE - 1, PIPELINE_MIN - 1, PIPELINE_MIN, 300_007, 2_000_003, 65_537)
"""Read sizes that cycle: below, at and above the inline threshold, above the 1 MiB chunk."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hashing_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == THREAD_NAME}


class ThreadSpy:
    """Records, at each chunk, whether a hashing thread is alive: proof that the pipelined path ran."""

    def __init__(self) -> None:
        self.seen_thread: list[bool] = []

    @hookimpl
    def on_chunk(self, nbytes: int) -> None:
        self.seen_thread.append(bool(hashing_threads()))


class IrregularStream(io.RawIOBase):
    """A raw source stream whose reads return the next of :data:`ODD_SIZES` bytes (or less at the end)."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._sizes = itertools.cycle(ODD_SIZES)
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError(f"source stream failed after {self._pos} bytes")
        with memoryview(buffer) as view:
            n = min(len(view), next(self._sizes), len(self._data) - self._pos)
            view[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class IrregularBackend(MemoryBackend):
    """A real MemoryBackend whose read streams and whose writes move :data:`ODD_SIZES` bytes at a time.

    Args:
        readinto: ``write`` fills one reused buffer with ``readinto`` (as some stores do) instead of ``read``.
        fail_after: Read streams fail after this many bytes; ``write`` fails after reading this many.
    """

    def __init__(self, *, readinto: bool = False, fail_after: int | None = None) -> None:
        super().__init__()
        self._readinto = readinto
        self._fail_after = fail_after
        self.streams: list[IrregularStream] = []

    def read(self, path: str) -> Any:
        with super().read(path) as inner:
            stream = IrregularStream(inner.read(), self._fail_after)
        self.streams.append(stream)
        return stream

    def write(self, path: str, content: Any, *, overwrite: bool = False, metadata: Any = None) -> Any:
        if isinstance(content, bytes):
            return super().write(path, content, overwrite=overwrite, metadata=metadata)
        received = bytearray()
        buffer = bytearray(max(ODD_SIZES))
        for size in itertools.cycle(ODD_SIZES):
            if self._fail_after is not None and len(received) >= self._fail_after:
                raise OSError(f"destination failed after {len(received)} bytes")
            if self._readinto:
                n = content.readinto(memoryview(buffer)[:size])
                chunk = bytes(buffer[:n])
            else:
                chunk = content.read(size)
            if not chunk:
                break
            received += chunk
        return super().write(path, bytes(received), overwrite=overwrite, metadata=metadata)


@pytest.fixture
def spy() -> ThreadSpy:
    return ThreadSpy()


@pytest.fixture
def integrity(spy: ThreadSpy) -> TransferManager:
    manager = TransferManager([spy])
    enable_plugin("integrity", manager=manager)
    return manager


def _three_calls(manager: TransferManager, store: Store, other: Store, source: Any, tmp_path: Any) -> list[Any]:
    threads = hashing_threads()
    with capture() as transfers:
        manager.upload(store, source, "up.bin")
        manager.download(store, "up.bin", tmp_path / "down.bin")
        manager.transfer(store, "up.bin", other, "copy.bin")
    assert hashing_threads() == threads  # every thread ended with its call
    return transfers


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["memory", "local"])
def test_digest_equals_hashlib_of_the_whole_file(integrity, spy, make_file, tmp_path, size, kind):
    store = Store(backend=MemoryBackend()) if kind == "memory" else Store(backend=LocalBackend(root=str(tmp_path)))
    source = make_file("src.bin", size)
    transfers = _three_calls(integrity, store, Store(backend=MemoryBackend()), source, tmp_path)
    expected = Digest("sha256", sha256(source.read_bytes()))
    assert [digest_of(t) for t in transfers] == [expected] * 3
    assert (tmp_path / "down.bin").read_bytes() == source.read_bytes()
    # Files above INLINE_FIRST + 1 MiB are hashed on the thread; smaller ones never start it.
    assert any(spy.seen_thread) is (size > INLINE_FIRST + CHUNK_SIZE)


@pytest.mark.parametrize("readinto", [False, True], ids=["read", "readinto"])
@pytest.mark.parametrize("size", [CHUNK_SIZE + 1, PIPELINED, 3 * INLINE_FIRST + 5])
def test_digest_with_irregular_chunk_sizes(integrity, spy, make_file, tmp_path, size, readinto):
    """Sources and destinations that move odd amounts: inline and threaded chunks interleave, order holds."""
    store = Store(backend=IrregularBackend(readinto=readinto))
    source = make_file("src.bin", size)
    transfers = _three_calls(integrity, store, Store(backend=IrregularBackend(readinto=readinto)), source, tmp_path)
    assert [digest_of(t) for t in transfers] == [Digest("sha256", sha256(source.read_bytes()))] * 3
    assert any(spy.seen_thread) is (size > INLINE_FIRST + CHUNK_SIZE)


@pytest.mark.spec("XFER-010")
@pytest.mark.spec("XFER-015")
@pytest.mark.parametrize("operation", ["download", "transfer"])
@pytest.mark.parametrize("backend", [RecordingBackend, IrregularBackend])
def test_a_source_failing_midway_ends_the_thread_and_records_no_digest(integrity, spy, tmp_path, operation, backend):
    fail_after = INLINE_FIRST + 2 * CHUNK_SIZE  # after the thread started
    source_backend = backend(fail_after=fail_after)
    store = Store(backend=source_backend)
    store.write("src.bin", os.urandom(3 * INLINE_FIRST))
    call = {
        "download": lambda: integrity.download(store, "src.bin", tmp_path / "down.bin"),
        "transfer": lambda: integrity.transfer(store, "src.bin", Store(backend=MemoryBackend()), "copy.bin"),
    }[operation]
    threads = hashing_threads()
    with capture() as transfers, pytest.raises(ConnectionResetError, match="source stream failed"):
        call()
    assert hashing_threads() == threads
    assert any(spy.seen_thread)
    assert digest_of(transfers[0]) is None
    assert transfers[0].bytes_transferred >= fail_after
    assert source_backend.streams[-1].closed  # the source stream was closed (XFER-010, XFER-015)


def test_a_destination_failing_midway_ends_the_thread_and_records_no_digest(integrity, spy, make_file):
    store = Store(backend=IrregularBackend(fail_after=INLINE_FIRST + 2 * CHUNK_SIZE))
    source = make_file("src.bin", 3 * INLINE_FIRST)
    threads = hashing_threads()
    with capture() as transfers, pytest.raises(OSError, match="destination failed"):
        integrity.upload(store, source, "up.bin")
    assert hashing_threads() == threads
    assert any(spy.seen_thread)
    assert digest_of(transfers[0]) is None


class RaisingObserver:
    """Raises *error* in ``on_chunk`` once *after* bytes have moved."""

    def __init__(self, error: BaseException, after: int) -> None:
        self.error = error
        self.after = after

    @hookimpl
    def on_chunk(self, context: Any) -> None:
        if context.bytes_transferred > self.after:
            raise self.error


@pytest.mark.parametrize("error", [RuntimeError("plugin refused"), KeyboardInterrupt()], ids=["plugin", "interrupt"])
@pytest.mark.parametrize("operation", ["upload", "download", "transfer"])
def test_a_plugin_or_an_interrupt_midway_ends_the_thread(integrity, spy, make_file, tmp_path, operation, error):
    integrity.register(RaisingObserver(error, INLINE_FIRST + 2 * CHUNK_SIZE))
    store = Store(backend=MemoryBackend())
    source = make_file("src.bin", 3 * INLINE_FIRST)
    store.write("src.bin", source.read_bytes())
    call = {
        "upload": lambda: integrity.upload(store, source, "up.bin"),
        "download": lambda: integrity.download(store, "src.bin", tmp_path / "down.bin"),
        "transfer": lambda: integrity.transfer(store, "src.bin", store, "copy.bin"),
    }[operation]
    threads = hashing_threads()
    with capture() as transfers, pytest.raises(type(error)) as caught:
        call()
    assert caught.value is error
    assert hashing_threads() == threads
    assert any(spy.seen_thread)
    assert digest_of(transfers[0]) is None


def test_a_kept_chunk_stays_unchanged_until_the_next_on_chunk_returns(make_file, tmp_path):
    """The ``on_chunk`` guarantee the hashing thread relies on (docs/hooks.md), for the download's reused buffers."""
    kept: list[tuple[Any, bytes]] = []
    changed: list[int] = []

    class Keeper:
        @hookimpl
        def on_chunk(self, data: Any) -> None:
            if kept and bytes(kept[-1][0]) != kept[-1][1]:
                changed.append(len(kept))
            kept.append((data, bytes(data)))

    store = Store(backend=LocalBackend(root=str(tmp_path)))
    make_file("src.bin", 5 * CHUNK_SIZE + 3)
    TransferManager([Keeper()]).download(store, "src.bin", tmp_path / "down.bin")
    assert len(kept) == 6
    assert changed == []


class FailingHasher:
    """A hasher that raises on its *fail_at*-th update: a fault no real hashlib object can be made to show."""

    def __init__(self, fail_at: int) -> None:
        self._real = hashlib.sha256()
        self._calls = 0
        self._fail_at = fail_at

    def update(self, data: Any) -> None:
        self._calls += 1
        if self._calls == self._fail_at:
            raise MemoryError("hasher out of memory")
        self._real.update(data)

    def hexdigest(self) -> str:
        return self._real.hexdigest()


def test_an_error_of_the_hasher_on_its_thread_surfaces():
    hasher = PipelinedHasher(FailingHasher(fail_at=8))  # type: ignore[arg-type]
    chunk = os.urandom(CHUNK_SIZE)
    threads = hashing_threads()

    def feed_all_then_digest() -> str:
        for _ in range(12):  # 4 inline, then on the thread
            hasher.feed(chunk)
        return hasher.hexdigest()

    with pytest.raises(MemoryError, match="hasher out of memory") as caught:
        feed_all_then_digest()
    hasher.close()
    assert "raised while hashing on the integrity plugin's thread" in caught.value.__notes__
    assert hashing_threads() == threads


def test_the_hasher_matches_hashlib_for_mixed_bytes_and_views():
    """Bytes (the thread may hold two) and views (hashed before the next feed returns) in one stream, in order."""
    blobs = [os.urandom(n) for n in (INLINE_FIRST, 1, 3 * PIPELINE_MIN, PIPELINE_MIN - 1, CHUNK_SIZE, 7, CHUNK_SIZE)]
    buffer = bytearray(max(len(b) for b in blobs))
    hasher = PipelinedHasher(hashlib.sha256())
    for index, blob in enumerate(blobs * 3):
        if index % 2:
            hasher.feed(blob)
        else:  # one reused buffer: correct only if each view is hashed before the next feed returns
            buffer[: len(blob)] = blob
            hasher.feed(memoryview(buffer)[: len(blob)])
    assert hasher.hexdigest() == sha256(b"".join(blobs * 3))
