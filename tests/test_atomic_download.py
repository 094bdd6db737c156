"""download(atomic=True) places the file with one rename and never clobbers a file that appeared meanwhile."""

from __future__ import annotations

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import TransferManager, hookimpl


@pytest.fixture
def store() -> Store:
    store = Store(backend=MemoryBackend())
    store.write("a.bin", b"n" * 3_000_000)
    return store


def test_atomic_download_writes_the_file_and_leaves_no_temp(store, tmp_path):
    TransferManager().download(store, "a.bin", tmp_path / "a.bin", atomic=True)
    assert (tmp_path / "a.bin").read_bytes() == b"n" * 3_000_000
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_file_that_appears_during_the_download_is_not_clobbered(store, tmp_path):
    dest = tmp_path / "a.bin"

    class Racer:
        """Another writer creates the destination while the download runs."""

        @hookimpl
        def on_chunk(self, context):
            if not dest.exists():
                dest.write_bytes(b"theirs")

    with pytest.raises(FileExistsError, match="already exists"):
        TransferManager([Racer()]).download(store, "a.bin", dest, atomic=True)
    assert dest.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_failed_atomic_download_keeps_the_old_file(store, tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"old")

    class Fails:
        @hookimpl
        def on_chunk(self, context):
            if context.bytes_transferred > 1_048_576:
                raise ConnectionError("link dropped")

    with pytest.raises(ConnectionError):
        TransferManager([Fails()]).download(store, "a.bin", dest, overwrite=True, atomic=True)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    TransferManager().download(store, "a.bin", dest, overwrite=True, atomic=True)  # a retry just works
    assert dest.read_bytes() == b"n" * 3_000_000
