"""Property tests: random contents and sizes, random read sizes on the source stream.

Whatever the size and however short the reads of the source stream are,
bytes out equal bytes in, ``sum(on_progress)`` equals the size, and the
chunks ``on_chunk`` saw are the content, in order.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from remote_store import Store
from storekit import MIB, FaultyLocalBackend, FaultyMemoryBackend, Recorder

from remote_store_transfer import TransferManager
from remote_store_transfer.streaming import CHUNK_SIZE

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.one_of(
    st.integers(0, 4096),
    st.integers(CHUNK_SIZE - 300, CHUNK_SIZE + 300),
    st.integers(CHUNK_SIZE + 1, 3 * MIB),
)


@st.composite
def read_sizes(draw: st.DrawFn, size: int):
    """``wanted -> how many``: a random short read, never so short that a case makes more than ~600 reads."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    floor = size // 600 + 1
    cap = draw(st.sampled_from([1, 7, 4096, 65536, CHUNK_SIZE, 3 * MIB]))
    return lambda wanted: rng.randint(1, max(floor, min(wanted, cap)))


CASE = {"data": st.data(), "size": sizes, "seed": st.integers(0, 2**32), "atomic": st.booleans()}
"""What every property draws: the content (size and seed), read sizes (via data), atomic or not."""
KINDS = st.sampled_from(["memory", "local"])


def _content(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _store(kind: str, folder: Path):
    if kind == "memory":
        backend = FaultyMemoryBackend()
    else:
        (folder / "store").mkdir(parents=True, exist_ok=True)
        backend = FaultyLocalBackend(root=str(folder / "store"))
    return Store(backend=backend), backend


def _check(recorder: Recorder, progress: list[int], content: bytes) -> None:
    event(f"size {'> 1 MiB' if len(content) > CHUNK_SIZE else '<= 1 MiB'}")
    event(f"{'over' if len(progress) > 100 else 'at most'} 100 chunks")
    assert sum(progress) == len(content)
    assert 0 not in progress
    assert recorder.sha256 == hashlib.sha256(content).hexdigest()
    assert (recorder.pre, recorder.post, recorder.errors) == (1, 1, [None])


@SETTINGS
@given(**CASE, kind=KINDS, plain=st.booleans())
def test_download_random_reads(data, size, seed, kind, plain, atomic):
    content = _content(size, seed)
    with tempfile.TemporaryDirectory() as folder:
        store, backend = _store(kind, Path(folder))
        store.write("src.bin", content)
        backend.read_sizes = data.draw(read_sizes(size))
        backend.plain_reads = plain
        dest = Path(folder) / "out.bin"
        recorder = Recorder()
        progress: list[int] = []

        TransferManager([recorder]).download(store, "src.bin", dest, on_progress=progress.append, atomic=atomic)

        assert dest.read_bytes() == content
        assert max(progress, default=0) <= CHUNK_SIZE
        _check(recorder, progress, content)


@SETTINGS
@given(**CASE, kinds=st.tuples(KINDS, KINDS), plain=st.booleans())
def test_transfer_random_reads(data, size, seed, kinds, plain, atomic):
    content = _content(size, seed)
    with tempfile.TemporaryDirectory() as folder:
        src, src_backend = _store(kinds[0], Path(folder) / "a")
        dst, _ = _store(kinds[1], Path(folder) / "b")
        src.write("src.bin", content)
        src_backend.read_sizes = data.draw(read_sizes(size))
        src_backend.plain_reads = plain
        recorder = Recorder()
        progress: list[int] = []

        TransferManager([recorder]).transfer(src, "src.bin", dst, "dst.bin", on_progress=progress.append, atomic=atomic)

        assert dst.read_bytes("dst.bin") == content
        _check(recorder, progress, content)


@SETTINGS
@given(**CASE, kind=KINDS)
def test_upload_random_reads(data, size, seed, kind, atomic):
    """upload's source is the local file; the destination store reads it with random sizes."""
    content = _content(size, seed)
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / "in.bin"
        local.write_bytes(content)
        store, backend = _store(kind, Path(folder))
        backend.write_read_sizes = data.draw(read_sizes(size))
        recorder = Recorder()
        progress: list[int] = []

        TransferManager([recorder]).upload(store, local, "dst.bin", on_progress=progress.append, atomic=atomic)

        assert store.read_bytes("dst.bin") == content
        _check(recorder, progress, content)
