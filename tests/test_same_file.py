"""A transfer whose destination is its own source is refused before anything is opened for writing.

Upstream's ``ext.transfer`` (and this package before) truncated the file
while reading it: ``copy local:self/big.bin local:self/big.bin --overwrite``
left a 0-byte file. Every spelling of "the same file" is refused with
``SameFileError`` (a ``TransferError`` and a ``ValueError``) naming both ends,
and the file keeps its bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

from remote_store_transfer import SameFileError, TransferError, download, transfer, upload

DATA = os.urandom(300_000)


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    root = tmp_path / "disk"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "big.bin").write_bytes(DATA)
    os.link(root / "sub" / "big.bin", root / "sub" / "hard.bin")
    os.symlink("big.bin", root / "sub" / "sym.bin")
    return root


def _refused(call: Callable[[], None], file: Path) -> SameFileError:
    with pytest.raises(SameFileError) as caught:
        call()
    assert isinstance(caught.value, TransferError)
    assert isinstance(caught.value, ValueError)
    assert file.read_bytes() == DATA  # nothing was opened for writing
    return caught.value


def test_transfer_onto_itself_through_every_spelling_of_a_local_store(disk: Path) -> None:
    store = Store(backend=LocalBackend(root=str(disk)))
    other = Store(backend=LocalBackend(root=str(disk.parent)))  # another Store object, another root
    big = disk / "sub" / "big.bin"
    for call in (
        lambda: transfer(store, "sub/big.bin", store, "sub/big.bin", overwrite=True),
        lambda: transfer(store, "sub/big.bin", store.child("sub"), "big.bin", overwrite=True),
        lambda: transfer(store, "sub/big.bin", other, "disk/sub/big.bin", overwrite=True),
        lambda: transfer(store, "sub/hard.bin", store, "sub/big.bin", overwrite=True),  # a hard link
        lambda: transfer(store, "sub/sym.bin", store, "sub/big.bin", overwrite=True, atomic=True),  # a symlink
    ):
        error = _refused(call, big)
        assert "transfer" in str(error)
        assert error.source != error.destination or "big.bin" in error.source


def test_upload_from_and_download_onto_the_file_a_local_store_serves(disk: Path) -> None:
    store = Store(backend=LocalBackend(root=str(disk)))
    big = disk / "sub" / "big.bin"
    spellings = [str(big), f"{disk}/./sub/big.bin", f"{disk}//sub//big.bin", str(disk / "sub" / "sym.bin")]
    for local in spellings:
        _refused(lambda local=local: upload(store, local, "sub/big.bin", overwrite=True), big)
        _refused(lambda local=local: download(store, "sub/big.bin", local, overwrite=True), big)
        _refused(lambda local=local: download(store, "sub/big.bin", local, overwrite=True, atomic=True), big)


def test_the_same_memory_store_location_through_a_child_alias_is_refused_but_another_store_is_not() -> None:
    store = Store(backend=MemoryBackend())
    store.write("d/a.bin", DATA)
    with pytest.raises(SameFileError):
        transfer(store, "d/a.bin", store.child("d"), "a.bin", overwrite=True)
    assert store.read_bytes("d/a.bin") == DATA
    elsewhere = Store(backend=MemoryBackend())  # same path, another backend: a real copy
    transfer(store, "d/a.bin", elsewhere, "d/a.bin", overwrite=True)
    assert elsewhere.read_bytes("d/a.bin") == DATA


def test_a_different_file_is_not_refused(disk: Path) -> None:
    store = Store(backend=LocalBackend(root=str(disk)))
    transfer(store, "sub/big.bin", store, "sub/copy.bin")
    upload(store, disk / "sub" / "big.bin", "sub/up.bin")
    download(store, "sub/big.bin", disk.parent / "down.bin")
    assert (disk / "sub" / "copy.bin").read_bytes() == DATA
    assert (disk / "sub" / "up.bin").read_bytes() == DATA
    assert (disk.parent / "down.bin").read_bytes() == DATA


def test_the_cli_copy_of_a_file_onto_itself_exits_with_the_usage_code(disk: Path, tmp_path: Path) -> None:
    registry = tmp_path / "stores.toml"
    registry.write_text(
        f'[backends.self]\ntype = "local"\noptions = {{ root = "{disk}" }}\n[stores.self]\nbackend = "self"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORE_TRANSFER_")}
    result = subprocess.run(
        [sys.executable, "-m", "remote_store_transfer", "copy", "self:sub/big.bin", "self:sub/big.bin", "--overwrite"],
        capture_output=True,
        text=True,
        env=env | {"REMOTE_STORE_TRANSFER_STORES": str(registry)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "is the source" in result.stderr
    assert (disk / "sub" / "big.bin").read_bytes() == DATA
