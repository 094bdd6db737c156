"""``atomic=True``: a reader sees the old file or the whole new one, never a part; nothing else is left behind.

``download(..., atomic=True)`` writes a temp file in the destination folder and
moves it into place; ``upload`` / ``transfer`` use ``Store.write_atomic`` and
raise ``CapabilityNotSupported`` (never a silent non-atomic write) where the
destination lacks ``ATOMIC_WRITE``. A failed atomic call leaves the
destination as it was, so the same call can simply be retried.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from remote_store import CapabilityNotSupported, Store
from remote_store.backends import ReadOnlyHttpBackend
from storekit import (
    MIB,
    STORE_KINDS,
    NoAtomicMemoryBackend,
    Recorder,
    message_of,
    sha256_in_store,
    sha256_of_file,
    stray_files,
)

from remote_store_transfer import TransferManager, hookimpl

OLD = b"old content that must survive a failed call\n"


class Watcher:
    """A plugin that, at every chunk, checks what a reader of the destination sees right now."""

    def __init__(self, check) -> None:
        self.check = check
        self.checks = 0

    @hookimpl
    def on_chunk(self, context) -> None:
        self.check()
        self.checks += 1


def _leftovers(faulty, expected: set[str]) -> list[str]:
    """Temp files a store kept: stray files in its folder, or S3 multipart uploads never finished."""
    if faulty.files is not None:
        return stray_files(faulty.files, expected) if faulty.files.exists() else []
    if faulty.bucket is not None:
        return faulty.store_server.pending_uploads(faulty.bucket) if hasattr(faulty, "store_server") else []
    return []


# region: download


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_atomic_download_lands_the_whole_file_and_nothing_else(kind, overwrite, make_store, payloads, tmp_path):
    store = make_store(kind)
    source, digest = payloads(MIB + 1)
    store.write("file.bin", source.read_bytes())
    dest = tmp_path / "dl" / "file.bin"
    dest.parent.mkdir()
    if overwrite:
        dest.write_bytes(OLD)

    def reader_sees_old_or_nothing() -> None:
        assert (dest.read_bytes() == OLD) if overwrite else not dest.exists()

    watcher = Watcher(reader_sees_old_or_nothing)
    recorder = Recorder()
    progress: list[int] = []
    TransferManager([recorder, watcher]).download(
        store, "file.bin", dest, overwrite=overwrite, atomic=True, on_progress=progress.append
    )

    assert sha256_of_file(dest) == (digest, MIB + 1)
    assert os.listdir(dest.parent) == ["file.bin"]
    assert watcher.checks == 2
    assert (recorder.pre, recorder.post, recorder.errors) == (1, 1, [None])
    assert sum(progress) == MIB + 1
    assert recorder.contexts[0].atomic is True


def test_atomic_download_never_clobbers_a_file_that_appears_meanwhile(memory_store, tmp_path):
    """overwrite=False is honoured at the moment of the move, not only at the start."""
    memory_store.write("file.bin", os.urandom(3 * MIB))
    dest = tmp_path / "file.bin"

    def someone_else_writes() -> None:
        if not dest.exists():
            dest.write_bytes(OLD)

    recorder = Recorder()
    with pytest.raises(FileExistsError) as info:
        TransferManager([recorder, Watcher(someone_else_writes)]).download(memory_store, "file.bin", dest, atomic=True)

    assert dest.read_bytes() == OLD
    assert os.listdir(tmp_path) == ["file.bin"]
    assert recorder.errors == [info.value]
    assert "download" in message_of(info.value)
    assert str(dest) in message_of(info.value)


def test_atomic_download_works_for_the_longest_file_name(memory_store, tmp_path):
    """The temp file's name must fit where the destination's name fits (NAME_MAX is 255 bytes)."""
    memory_store.write("file.bin", b"x" * 100)
    dest = tmp_path / ("n" * 255)

    TransferManager().download(memory_store, "file.bin", dest, atomic=True)

    assert dest.read_bytes() == b"x" * 100
    assert os.listdir(tmp_path) == [dest.name]


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "plain"])
def test_retry_after_a_failed_download(atomic, faulty_store, tmp_path):
    """atomic: nothing is left, so the same call (overwrite=False) succeeds next time.

    plain (the spec's default): the partial file stays and blocks a plain retry; overwrite=True replaces it.
    """
    src = faulty_store("memory")
    data = os.urandom(2 * MIB + 5)
    src.store.write("file.bin", data)
    dest = tmp_path / "file.bin"
    manager = TransferManager()

    src.backend.read_fails_after = MIB + 3
    with pytest.raises(ConnectionResetError):
        manager.download(src.store, "file.bin", dest, atomic=atomic)
    src.backend.read_fails_after = None

    if atomic:
        assert os.listdir(tmp_path) == []
        manager.download(src.store, "file.bin", dest, atomic=True)
    else:
        assert dest.read_bytes() == data[: MIB + 3]
        with pytest.raises(FileExistsError):
            manager.download(src.store, "file.bin", dest)
        manager.download(src.store, "file.bin", dest, overwrite=True)
    assert dest.read_bytes() == data


# endregion

# region: upload and transfer


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_atomic_upload_readers_see_old_or_new(kind, overwrite, faulty_store, moto_server, payloads):
    dst = faulty_store(kind)
    source, digest = payloads(2 * MIB + 1)
    if overwrite:
        dst.store.write("dir/file.bin", OLD)

    def reader_sees_old_or_nothing() -> None:
        if overwrite:
            assert dst.store.read_bytes("dir/file.bin") == OLD
        else:
            assert not dst.store.exists("dir/file.bin")

    watcher = Watcher(reader_sees_old_or_nothing)
    recorder = Recorder()
    TransferManager([recorder, watcher]).upload(dst.store, source, "dir/file.bin", overwrite=overwrite, atomic=True)

    assert sha256_in_store(dst.store, "dir/file.bin") == (digest, 2 * MIB + 1)
    assert watcher.checks > 0
    assert (recorder.pre, recorder.post, recorder.errors) == (1, 1, [None])
    if dst.files is not None:
        assert stray_files(dst.files, {"dir/file.bin"}) == []
    if dst.bucket is not None:
        assert moto_server.pending_uploads(dst.bucket) == []


@pytest.mark.parametrize("dst_kind", STORE_KINDS)
@pytest.mark.parametrize("src_kind", STORE_KINDS)
def test_atomic_transfer_readers_see_old_or_new(src_kind, dst_kind, faulty_store, moto_server):
    src = faulty_store(src_kind)
    dst = faulty_store(dst_kind)
    data = os.urandom(MIB + 7)
    src.store.write("a.bin", data)
    dst.store.write("b.bin", OLD)

    def reader_sees_old() -> None:
        assert dst.store.read_bytes("b.bin") == OLD

    watcher = Watcher(reader_sees_old)
    recorder = Recorder()
    TransferManager([recorder, watcher]).transfer(src.store, "a.bin", dst.store, "b.bin", overwrite=True, atomic=True)

    assert dst.store.read_bytes("b.bin") == data
    assert watcher.checks > 0
    assert recorder.sha256 == hashlib.sha256(data).hexdigest()
    assert [s.inner_closed for s in src.backend.opened] == [True]
    if dst.files is not None:
        assert stray_files(dst.files, {"b.bin"}) == []
    if dst.bucket is not None:
        assert moto_server.pending_uploads(dst.bucket) == []


@pytest.mark.spec("XFER-017")
@pytest.mark.parametrize("operation", ["upload", "transfer"])
def test_atomic_on_a_store_without_atomic_write_raises_and_writes_nothing(operation, faulty_store, make_file):
    dst = Store(backend=NoAtomicMemoryBackend())
    src = faulty_store("memory")
    src.store.write("a.bin", b"payload")
    local = make_file("a.bin", b"payload")
    recorder = Recorder()
    manager = TransferManager([recorder])

    call = getattr(manager, operation)
    args = (dst, local, "b.bin") if operation == "upload" else (src.store, "a.bin", dst, "b.bin")

    with pytest.raises(CapabilityNotSupported) as info:
        call(*args, atomic=True)

    assert type(info.value) is CapabilityNotSupported
    assert not dst.exists("b.bin")
    assert recorder.errors == [info.value]
    assert all(s.inner_closed for s in src.backend.opened)
    # Without atomic the same store takes the write: the capability is what is missing, nothing else.
    call(*args)
    assert dst.read_bytes("b.bin") == b"payload"


def test_atomic_upload_to_a_read_only_http_store_raises_capability_not_supported(make_file):
    """A real store that lacks ATOMIC_WRITE: the capability gate answers before any request."""
    store = Store(backend=ReadOnlyHttpBackend("http://127.0.0.1:9/"))
    recorder = Recorder()
    with pytest.raises(CapabilityNotSupported) as info:
        TransferManager([recorder]).upload(store, make_file("a.bin", b"x"), "a.bin", atomic=True)
    assert type(info.value) is CapabilityNotSupported
    assert recorder.errors == [info.value]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_failed_atomic_upload_leaves_nothing_and_can_be_retried_as_is(kind, faulty_store, moto_server, make_file):
    """The destination's write breaks midway: nothing appears at the path; the same call then succeeds."""
    dst = faulty_store(kind)
    data = os.urandom(3 * MIB)
    local: Path = make_file("up.bin", data)
    manager = TransferManager()

    dst.backend.write_fails_after = MIB + 11
    with pytest.raises(Exception, match=r"\w") as info:  # the store's own error type for a lost connection
        manager.upload(dst.store, local, "up.bin", atomic=True)
    assert "upload" in message_of(info.value)
    assert not dst.store.exists("up.bin")
    if dst.files is not None and dst.files.exists():
        assert stray_files(dst.files, set()) == []

    dst.backend.write_fails_after = None
    manager.upload(dst.store, local, "up.bin", atomic=True)
    assert dst.store.read_bytes("up.bin") == data
    if dst.files is not None:
        assert stray_files(dst.files, {"up.bin"}) == []
    if dst.bucket is not None:
        assert moto_server.pending_uploads(dst.bucket) == []


# endregion
