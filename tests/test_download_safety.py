"""Downloads never clobber what appeared meanwhile, never write through a dangling symlink, and keep a file's mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import TransferManager, download, hookimpl

DATA = b"remote bytes " * 1000


@pytest.fixture
def store() -> Store:
    s = Store(backend=MemoryBackend())
    s.write("a.bin", DATA)
    return s


def test_a_file_that_appears_while_the_stream_opens_is_not_overwritten(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"

    class Appear:  # runs after the existence check, before the local file is opened
        @hookimpl
        def pre_transfer(self, context):
            dest.write_bytes(b"someone else's file")

    with pytest.raises(FileExistsError):
        TransferManager([Appear()]).download(store, "a.bin", dest)
    assert dest.read_bytes() == b"someone else's file"


def test_a_dangling_symlink_at_the_destination_is_not_followed(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "target.bin"
    target.parent.mkdir()
    link = tmp_path / "a.bin"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        download(store, "a.bin", link)
    assert not target.exists()  # its target was not created
    assert link.is_symlink()


@pytest.mark.parametrize("atomic", [False, True])
def test_a_redownload_over_a_0600_file_keeps_it_0600(store: Store, tmp_path: Path, atomic: bool) -> None:
    dest = tmp_path / "secret.bin"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o600)
    download(store, "a.bin", dest, overwrite=True, atomic=atomic)
    assert dest.read_bytes() == DATA
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


@pytest.mark.parametrize("atomic", [False, True])
def test_a_missing_local_folder_is_named_as_the_destination(store: Store, tmp_path: Path, atomic: bool) -> None:
    """The API keeps upstream's FileNotFoundError, and its note says the destination's folder is missing."""
    dest = tmp_path / "missing" / "folder" / "a.bin"
    with pytest.raises(FileNotFoundError) as caught:
        download(store, "a.bin", dest, atomic=atomic)
    notes = getattr(caught.value, "__notes__", [])
    assert any(f"the destination's folder {dest.parent} does not exist" in note for note in notes), notes
    assert not dest.parent.exists()


def test_bytes_local_paths_are_supported_fully(store: Store, tmp_path: Path) -> None:
    """A bytes path (also one that is not UTF-8) works and is described as text, never as b'...'."""
    from remote_store_transfer import capture, upload

    name = os.fsencode(str(tmp_path)) + b"/caf\xe9-\xff.bin"  # latin-1 e-acute and a byte no codec decodes
    with capture() as contexts:
        download(store, "a.bin", name)
        upload(store, name, "back.bin")
    assert store.read_bytes("back.bin") == DATA
    assert Path(os.fsdecode(name)).read_bytes() == DATA
    for context in contexts:
        assert "b'" not in context.describe()
        assert isinstance(context.source.path, str)
        assert isinstance(context.destination.path, str)
