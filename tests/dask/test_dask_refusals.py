"""What a tree on a Dask cluster refuses before anything moves: memory stores, and ``max_bandwidth``."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend
from rst_dask_kit import CallerSpy, make_tree

import remote_store_transfer as rst
from remote_store_transfer import CannotTravel


def _files(store: Store) -> list[str]:
    return [str(info.path) for info in store.list_files("", recursive=True)]


@pytest.mark.parametrize("operation", ["upload_tree", "download_tree", "transfer_tree"])
def test_a_memory_store_is_refused_by_name_and_nothing_is_written(
    dask_client, probe_dir, tmp_path: Path, operation: str
):
    """``CannotTravel`` names the memory store; ``pre_batch`` never ran and no file, record or folder appeared."""
    make_tree(tmp_path / "src", 4)
    memory = Store(backend=MemoryBackend())
    (tmp_path / "local-store").mkdir()
    local = Store(backend=LocalBackend(root=str(tmp_path / "local-store")))
    spy = CallerSpy()
    rst.plugin_manager().register(spy, name="caller-spy")
    log = tmp_path / "audit.jsonl"
    rst.enable_plugin("audit", path=log)
    probed = sorted(probe_dir.iterdir())

    if operation == "upload_tree":
        call = functools.partial(rst.upload_tree, memory, tmp_path / "src", "up", executor=dask_client)
    elif operation == "download_tree":
        memory.write("data/a.bin", b"a")
        call = functools.partial(rst.download_tree, memory, "data", tmp_path / "out", executor=dask_client)
    else:
        local.write("data/a.bin", b"a")
        call = functools.partial(rst.transfer_tree, local, "data", memory, "copy", executor=dask_client)

    with pytest.raises(CannotTravel) as caught:
        call()

    message = str(caught.value)
    assert repr(memory) in message
    assert "memory store" in message
    role = "source" if operation == "download_tree" else "destination"
    assert f"the {role} " in message
    assert spy.batches == []  # refused before pre_batch
    assert spy.files == []
    assert _files(memory) == (["data/a.bin"] if operation == "download_tree" else [])
    assert _files(local) == (["data/a.bin"] if operation == "transfer_tree" else [])
    assert not (tmp_path / "out").exists()
    assert not log.exists()
    assert sorted(probe_dir.iterdir()) == probed  # no file began anywhere


def test_max_bandwidth_is_refused_with_a_dask_client(dask_client, tmp_path: Path):
    make_tree(tmp_path / "src", 2)
    (tmp_path / "dst").mkdir()
    store = Store(backend=LocalBackend(root=str(tmp_path / "dst")))
    with pytest.raises(ValueError, match="max_bandwidth") as caught:
        rst.upload_tree(store, tmp_path / "src", "up", executor=dask_client, max_bandwidth=1_000_000)
    assert "Client" in str(caught.value)
    assert _files(store) == []
