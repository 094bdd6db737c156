"""A source that ends early never passes as a complete file when its size is known.

The sources here really end early: a local file truncated on disk while it is
read. (``tests/stores/test_faults.py`` does the same to a real SFTP connection.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend

from remote_store_transfer import IncompleteTransferError, TransferManager, hookimpl
from remote_store_transfer.plugin.integrity import IntegrityPlugin, digest_of
from remote_store_transfer.plugin.policy import PolicyPlugin

MIB = 1 << 20
SIZE = 3 * MIB
OLD = b"old content"


class Recorder:
    @hookimpl
    def post_transfer(self, context, error):
        self.context, self.error = context, error


def truncate_after_first_chunk(path: Path, to: int = MIB + 5):
    """An ``on_progress`` that cuts *path* down to *to* bytes once the first chunk was read."""
    done = []

    def on_progress(nbytes: int) -> None:
        if not done:
            done.append(nbytes)
            os.truncate(path, to)

    return on_progress


@pytest.fixture
def stores(tmp_path):
    """A source store holding a 3 MiB ``src.bin`` and a destination store holding ``dst.bin``."""
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "src" / "src.bin").write_bytes(os.urandom(SIZE))
    (tmp_path / "dst" / "dst.bin").write_bytes(OLD)
    return Store(backend=LocalBackend(root=str(tmp_path / "src"))), Store(
        backend=LocalBackend(root=str(tmp_path / "dst"))
    )


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def truncating_transfer(manager: TransferManager, stores, tmp_path: Path, **options) -> None:
    """``src.bin`` to ``dst.bin`` (overwriting), the source cut to ``MIB + 5`` bytes after the first chunk."""
    src, dst = stores
    on_progress = truncate_after_first_chunk(tmp_path / "src" / "src.bin")
    manager.transfer(src, "src.bin", dst, "dst.bin", overwrite=True, on_progress=on_progress, **options)


@pytest.mark.parametrize("atomic", [False, True])
def test_upload_of_a_file_truncated_while_read_fails(tmp_path, stores, atomic):
    _, dst = stores
    source = tmp_path / "src" / "src.bin"
    recorder = Recorder()

    with pytest.raises(IncompleteTransferError) as info:
        TransferManager([recorder]).upload(
            dst, source, "dst.bin", overwrite=True, atomic=atomic, on_progress=truncate_after_first_chunk(source)
        )

    error = info.value
    assert (error.expected, error.received) == (SIZE, MIB + 5)
    assert "upload" in str(error) and "src.bin" in str(error) and "dst.bin" in str(error)
    assert f"after {MIB + 5} of {SIZE} bytes" in str(error)
    assert recorder.error is error
    if atomic:  # raised at the source's end, inside write_atomic: nothing committed, no temp file
        assert (tmp_path / "dst" / "dst.bin").read_bytes() == OLD
        assert names(tmp_path / "dst") == ["dst.bin"]


def test_upload_nothing_observes_is_checked_after_the_write(tmp_path, stores):
    """No chunk observer: the file goes straight to store.write(); the shortfall is still an error."""
    _, dst = stores
    source = tmp_path / "src" / "src.bin"
    original = source.read_bytes()

    class ShrinkAfterStat:
        @hookimpl
        def pre_transfer(self, context):
            os.truncate(source, 1000)  # after the core took the size

    with pytest.raises(IncompleteTransferError, match="the destination already holds those bytes") as info:
        TransferManager([ShrinkAfterStat()]).upload(dst, source, "dst.bin", overwrite=True)

    assert (info.value.expected, info.value.received) == (SIZE, 1000)
    assert (tmp_path / "dst" / "dst.bin").read_bytes() == original[:1000]


def test_a_source_that_grows_while_read_is_not_an_error(tmp_path, stores):
    _, dst = stores
    source = tmp_path / "src" / "src.bin"
    original = source.read_bytes()

    grown: list[int] = []

    def grow(nbytes: int) -> None:
        if not grown:
            grown.append(nbytes)
            with open(source, "ab") as fh:
                fh.write(b"+" * 10)

    TransferManager().upload(dst, source, "dst.bin", overwrite=True, on_progress=grow)

    assert (tmp_path / "dst" / "dst.bin").read_bytes() == original + b"+" * 10


@pytest.mark.parametrize("atomic", [False, True])
def test_transfer_with_integrity_fails_when_the_source_ends_early(tmp_path, stores, atomic):
    recorder = Recorder()

    with pytest.raises(IncompleteTransferError) as info:
        truncating_transfer(TransferManager([IntegrityPlugin(), recorder]), stores, tmp_path, atomic=atomic)

    assert (info.value.expected, info.value.received) == (SIZE, MIB + 5)
    assert "transfer" in str(info.value)
    assert recorder.context.size == SIZE  # set by integrity's pre_transfer from get_file_info
    assert digest_of(recorder.context) is None  # no digest of part of a file
    if atomic:
        assert (tmp_path / "dst" / "dst.bin").read_bytes() == OLD
        assert names(tmp_path / "dst") == ["dst.bin"]


def test_transfer_without_a_known_size_takes_the_end_of_the_stream_as_upstream_does(tmp_path, stores):
    """The plain call makes no metadata call, so it cannot tell (docs/reliability.md says to enable integrity)."""
    original = (tmp_path / "src" / "src.bin").read_bytes()

    truncating_transfer(TransferManager(), stores, tmp_path)

    assert (tmp_path / "dst" / "dst.bin").read_bytes() == original[: MIB + 5]


def test_integrity_check_size_off_makes_no_metadata_call(tmp_path, stores):
    src, dst = stores
    recorder = Recorder()
    TransferManager([IntegrityPlugin(check_size=False), recorder]).transfer(
        src, "src.bin", dst, "dst.bin", overwrite=True
    )
    assert recorder.context.size is None
    assert recorder.error is None


@pytest.mark.parametrize("atomic", [False, True])
def test_download_with_integrity_fails_when_the_source_ends_early(tmp_path, stores, atomic):
    src, _ = stores
    dest = tmp_path / "dl" / "dst.bin"
    dest.parent.mkdir()
    dest.write_bytes(OLD)

    with pytest.raises(IncompleteTransferError) as info:
        TransferManager([IntegrityPlugin()]).download(
            src,
            "src.bin",
            dest,
            overwrite=True,
            atomic=atomic,
            on_progress=truncate_after_first_chunk(tmp_path / "src" / "src.bin"),
        )

    assert (info.value.expected, info.value.received) == (SIZE, MIB + 5)
    assert "download" in str(info.value)
    if atomic:  # checked before the temp file is moved into place
        assert dest.read_bytes() == OLD
        assert names(dest.parent) == ["dst.bin"]
    else:  # as for any failed plain download, the bytes that arrived stay
        assert dest.stat().st_size == MIB + 5


def test_policy_max_size_also_provides_the_size(tmp_path, stores):
    with pytest.raises(IncompleteTransferError):
        truncating_transfer(TransferManager([PolicyPlugin(max_size=10 * MIB)]), stores, tmp_path)


class SizeFromMetadata:
    """Sets ``context.size`` from the source store (as integrity and policy do) and observes no chunk."""

    @hookimpl(tryfirst=True)
    def pre_transfer(self, context):
        context.size = context.source.store.get_file_info(context.source.path).size


def test_transfer_nothing_observes_is_checked_after_the_write(tmp_path, stores):
    """A plugin sets the size but observes no chunk: the stream goes unwrapped; the shortfall still fails the call."""
    src, dst = stores
    original = (tmp_path / "src" / "src.bin").read_bytes()

    class ShrinkAfterLookup:
        @hookimpl(trylast=True)
        def pre_transfer(self, context):
            assert context.size == SIZE  # looked up
            os.truncate(tmp_path / "src" / "src.bin", 1000)

    manager = TransferManager([SizeFromMetadata(), ShrinkAfterLookup()])
    with pytest.raises(IncompleteTransferError, match="the destination already holds those bytes") as info:
        manager.transfer(src, "src.bin", dst, "dst.bin", overwrite=True)

    assert (info.value.expected, info.value.received) == (SIZE, 1000)
    assert (tmp_path / "dst" / "dst.bin").read_bytes() == original[:1000]


def test_atomic_upload_nothing_observes_never_commits_a_file_cut_short(tmp_path, stores):
    """atomic=True: even with no chunk observer the check runs inside write_atomic, so the good copy stays."""
    _, dst = stores
    source = tmp_path / "src" / "src.bin"

    class ShrinkAfterStat:
        @hookimpl
        def pre_transfer(self, context):
            os.truncate(source, 1000)  # after the core took the size

    with pytest.raises(IncompleteTransferError) as info:
        TransferManager([ShrinkAfterStat()]).upload(dst, source, "dst.bin", overwrite=True, atomic=True)

    assert (info.value.expected, info.value.received) == (SIZE, 1000)
    assert "already holds" not in str(info.value)
    assert (tmp_path / "dst" / "dst.bin").read_bytes() == OLD  # nothing committed
    assert names(tmp_path / "dst") == ["dst.bin"]  # no temp file left


def test_atomic_transfer_nothing_observes_never_commits_a_file_cut_short(tmp_path, stores):
    """A plugin sets the size and observes no chunk; with atomic the shortfall fails before the commit."""
    src, dst = stores

    class ShrinkAfterLookup:
        @hookimpl(trylast=True)
        def pre_transfer(self, context):
            assert context.size == SIZE
            os.truncate(tmp_path / "src" / "src.bin", 1000)

    manager = TransferManager([SizeFromMetadata(), ShrinkAfterLookup()])
    with pytest.raises(IncompleteTransferError) as info:
        manager.transfer(src, "src.bin", dst, "dst.bin", overwrite=True, atomic=True)

    assert (info.value.expected, info.value.received) == (SIZE, 1000)
    assert (tmp_path / "dst" / "dst.bin").read_bytes() == OLD
    assert names(tmp_path / "dst") == ["dst.bin"]
