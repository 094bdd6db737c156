"""upload, download and transfer over real stores: Memory, Local, S3 (moto server) and SFTP (OpenSSH).

Chunking does not depend on the store, so the sizes around the 1 MiB chunk
boundary run on the cheap stores (memory, local; every pair of them for
``transfer``); every real store and every ordered pair runs one small size
that crosses a chunk boundary; and 40 MiB runs once per store kind as source
and once as destination (``upload`` to it, ``download`` from it, and a cycle of
``transfer`` pairs). Each call: content checked by sha256, ``on_progress``
totals exact, the chunks seen by a plugin hash to the content,
``pre_transfer`` and ``post_transfer`` once.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from remote_store import Capability
from storekit import MIB, STORE_KINDS, Recorder, sha256_in_store, sha256_of_file

from remote_store_transfer import TransferManager, hookimpl
from remote_store_transfer.streaming import CHUNK_SIZE

SIZES = {"0B": 0, "1B": 1, "1MiB-1": MIB - 1, "1MiB": MIB, "1MiB+1": MIB + 1}
"""The chunk-boundary sizes."""
LARGE = ("40MiB", 40 * MIB)
SMALL = ("1MiB+1", MIB + 1)
CHEAP = ("memory", "local")
PAIRS = list(itertools.product(STORE_KINDS, repeat=2))
CYCLE = list(zip(STORE_KINDS, STORE_KINDS[1:] + STORE_KINDS[:1], strict=True))
"""Each kind once as a transfer's source and once as its destination."""


def _kind_cases() -> list[object]:
    """``(kind, size)`` for upload and download:
    boundary sizes on cheap stores, one small size on real ones, 40 MiB on all.
    """
    cases: list[object] = []
    for kind in STORE_KINDS:
        sizes = dict(SIZES) if kind in CHEAP else dict([SMALL])
        sizes[LARGE[0]] = LARGE[1]
        cases += [pytest.param(kind, size, id=f"{kind}-{name}") for name, size in sizes.items()]
    return cases


def _pair_cases() -> list[object]:
    """``(src, dst, size)`` for transfer: the boundary sizes between cheap stores, one small size on every pair,
    40 MiB on the :data:`CYCLE`."""
    cases: list[object] = []
    for src, dst in PAIRS:
        sizes = dict(SIZES) if src in CHEAP and dst in CHEAP else dict([SMALL])
        if (src, dst) in CYCLE:
            sizes[LARGE[0]] = LARGE[1]
        cases += [pytest.param(src, dst, size, id=f"{src}-to-{dst}-{name}") for name, size in sizes.items()]
    return cases


def _put(store, path: str, local: Path) -> None:
    with open(local, "rb") as fh:
        store.write(path, fh)


def _check_call(recorder: Recorder, progress: list[int], size: int, digest: str) -> None:
    assert (recorder.pre, recorder.post) == (1, 1)
    assert recorder.errors == [None]
    assert sum(progress) == size
    assert 0 not in progress
    assert len(progress) == recorder.chunks
    assert recorder.chunk_bytes == size
    assert recorder.sha256 == digest
    assert recorder.contexts[0].bytes_transferred == size


@pytest.mark.spec("XFER-002")
@pytest.mark.parametrize(("kind", "size"), _kind_cases())
def test_upload(kind: str, size: int, make_store, payloads) -> None:
    store = make_store(kind)
    source, digest = payloads(size)
    recorder = Recorder()
    progress: list[int] = []

    TransferManager([recorder]).upload(store, source, "up/file.bin", on_progress=progress.append)

    assert sha256_in_store(store, "up/file.bin") == (digest, size)
    _check_call(recorder, progress, size, digest)
    assert recorder.contexts[0].write_result.size == size


@pytest.mark.spec("XFER-007")
@pytest.mark.parametrize(("kind", "size"), _kind_cases())
def test_download(kind: str, size: int, make_store, payloads, tmp_path: Path) -> None:
    store = make_store(kind)
    source, digest = payloads(size)
    _put(store, "down/file.bin", source)
    dest = tmp_path / "out" / "file.bin"
    dest.parent.mkdir()
    recorder = Recorder()
    progress: list[int] = []

    TransferManager([recorder]).download(store, "down/file.bin", dest, on_progress=progress.append)

    assert sha256_of_file(dest) == (digest, size)
    _check_call(recorder, progress, size, digest)
    assert max(progress, default=0) <= CHUNK_SIZE
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


@pytest.mark.spec("XFER-012")
@pytest.mark.parametrize(("src_kind", "dst_kind", "size"), _pair_cases())
def test_transfer(src_kind: str, dst_kind: str, size: int, make_store, payloads) -> None:
    src = make_store(src_kind, 0)
    dst = make_store(dst_kind, 1)
    source, digest = payloads(size)
    _put(src, "from/file.bin", source)
    recorder = Recorder()
    progress: list[int] = []

    TransferManager([recorder]).transfer(src, "from/file.bin", dst, "to/file.bin", on_progress=progress.append)

    assert sha256_in_store(dst, "to/file.bin") == (digest, size)
    _check_call(recorder, progress, size, digest)
    assert recorder.contexts[0].write_result.size == size


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_transfer_without_observers_moves_every_byte(src_kind: str, dst_kind: str, make_store, payloads) -> None:
    """No on_progress and no chunk plugin: the source stream goes straight to the destination's write."""
    src = make_store(src_kind, 0)
    dst = make_store(dst_kind, 1)
    source, digest = payloads(MIB + 1)
    _put(src, "from/file.bin", source)
    manager = TransferManager()

    manager.transfer(src, "from/file.bin", dst, "to/file.bin")

    assert sha256_in_store(dst, "to/file.bin") == (digest, MIB + 1)


class PrePost:
    """Implements pre_transfer and post_transfer only: the core keeps its no-wrapper fast path."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[int | None, int, BaseException | None]] = []

    @hookimpl
    def post_transfer(self, context, error) -> None:
        self.outcomes.append((context.size, context.bytes_transferred, error))


@pytest.mark.parametrize("size", [0, MIB + 1], ids=["0B", "1MiB+1"])
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_upload_without_observers_checks_the_size_the_store_reports(kind: str, size: int, make_store, payloads):
    """The open file goes straight to store.write(); the WriteResult's size is what proves nothing was cut."""
    store = make_store(kind)
    source, digest = payloads(size)
    plugin = PrePost()

    TransferManager([plugin]).upload(store, source, "up/plain.bin", atomic=store.supports(Capability.ATOMIC_WRITE))

    assert sha256_in_store(store, "up/plain.bin") == (digest, size)
    assert plugin.outcomes == [(size, size, None)]
