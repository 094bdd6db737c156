"""Streaming means memory does not grow with file size: tracemalloc peaks at 16 MiB and 128 MiB.

Local stores are used on both sides because a memory store keeps whole files
in memory by design. Only the peak's growth between the two sizes is
asserted, never a time.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend

from remote_store_transfer import TransferManager, hookimpl
from remote_store_transfer.plugin.integrity import IntegrityPlugin

MiB = 1_048_576
SMALL, LARGE = 16 * MiB, 128 * MiB
ALLOWED_GROWTH = 64 * 1024


class Digest:
    """A chunk observer, so the hook path (not only the fast path) is measured."""

    def __init__(self) -> None:
        self.seen = 0

    @hookimpl
    def on_chunk(self, nbytes: int) -> None:
        self.seen += nbytes


def _write_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        for _ in range(size // MiB):
            fh.write(block)


def _peak(run: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("sizes")
    out = {}
    for size in (SMALL, LARGE):
        out[size] = root / f"{size}.bin"
        _write_file(out[size], size)
    return out


@pytest.mark.spec("XFER-002")
@pytest.mark.spec("XFER-007")
@pytest.mark.spec("XFER-012")
@pytest.mark.parametrize("operation", ["upload", "download", "transfer"])
@pytest.mark.parametrize(
    "observed", [False, True, "integrity"], ids=["no-observer", "on_progress+plugin", "integrity-thread"]
)
def test_peak_memory_does_not_grow_with_file_size(operation, observed, files, tmp_path):
    peaks = {}
    for size, path in files.items():
        root = tmp_path / f"store-{size}"
        root.mkdir()
        store = Store(backend=LocalBackend(root=str(root)))
        plugin = Digest()
        if observed == "integrity":  # the hashing thread holds chunks too (both sizes are hashed on it)
            manager, progress = TransferManager([IntegrityPlugin()]), None
        else:
            manager = TransferManager([plugin] if observed else [])
            progress = [] if observed else None
        kwargs = {"on_progress": progress.append} if progress is not None else {}
        if operation != "upload":
            TransferManager().upload(store, path, "src.bin")
        calls = {
            "upload": lambda: manager.upload(store, path, "dst.bin", **kwargs),
            "download": lambda: manager.download(store, "src.bin", tmp_path / f"down-{size}.bin", **kwargs),
            "transfer": lambda: manager.transfer(store, "src.bin", store, "dst.bin", **kwargs),
        }
        peaks[size] = _peak(calls[operation])
        if progress is not None:
            assert plugin.seen == size and sum(progress) == size
    assert peaks[LARGE] - peaks[SMALL] <= ALLOWED_GROWTH, peaks
    assert peaks[LARGE] < 4 * MiB, peaks  # a couple of buffers, never the file
