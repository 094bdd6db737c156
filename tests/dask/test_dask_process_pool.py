"""Trees on a ``ProcessPoolExecutor`` (spawned processes): a round trip, and what is refused before anything moves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend
from rst_dask_kit import CallerSpy, local_tree, make_tree, probe_events, store_tree

import remote_store_transfer as rst
from remote_store_transfer import CannotTravel


@pytest.fixture
def store(tmp_path: Path) -> Store:
    (tmp_path / "store").mkdir()
    return Store(backend=LocalBackend(root=str(tmp_path / "store")))


def test_a_round_trip_through_a_local_store_on_a_process_pool(pool, store, probe_dir, tmp_path):
    """local folder -> LocalBackend store -> local folder, every file in a pool process, bytes intact."""
    files = make_tree(tmp_path / "src", 10, big=1)

    up = rst.upload_tree(store, tmp_path / "src", "rt", executor=pool, atomic=True)
    down = rst.download_tree(store, "rt", tmp_path / "back", executor=pool, atomic=True)

    for result in (up, down):
        assert result.ok, result.failed
        assert sorted(result.transferred) == sorted(files)
        assert result.bytes_transferred == sum(map(len, files.values()))
    assert store_tree(store, "rt") == files
    assert local_tree(tmp_path / "back") == files  # hidden files included: no temp file left
    for result in (up, down):  # the installed probe plugin ran in the pool's processes, not here
        pids = {e["pid"] for e in probe_events(probe_dir, result.batch_id)}
        assert pids
        assert os.getpid() not in pids


def test_an_unpicklable_plugin_setting_is_refused_by_name_before_anything_moves(pool, store, tmp_path):
    make_tree(tmp_path / "src", 3)
    log = tmp_path / "audit.jsonl"
    rst.enable_plugin("audit", path=log, actor=lambda context: "x")
    spy = CallerSpy()
    rst.plugin_manager().register(spy, name="caller-spy")

    with pytest.raises(CannotTravel) as caught:
        rst.upload_tree(store, tmp_path / "src", "up", executor=pool)

    message = str(caught.value)
    assert "'actor'" in message
    assert "'audit'" in message
    assert spy.batches == []
    assert store_tree(store, "") == {}
    assert not log.exists()


def test_max_bandwidth_is_refused_with_a_process_pool(pool, store, tmp_path):
    make_tree(tmp_path / "src", 2)
    with pytest.raises(ValueError, match="max_bandwidth") as caught:
        rst.upload_tree(store, tmp_path / "src", "up", executor=pool, max_bandwidth=1_000_000)
    assert "ProcessPoolExecutor" in str(caught.value)
    assert store_tree(store, "") == {}


def test_progress_and_files_come_back_to_the_caller_from_the_cluster(dask_client, store, tmp_path):
    """on_progress advances by each file's bytes as it ends on a worker; on_file and the result are complete."""
    files = make_tree(tmp_path / "src", 10, big=1)
    progress: list[int] = []
    ended: list[str] = []

    result = rst.upload_tree(
        store,
        tmp_path / "src",
        "p",
        executor=dask_client,
        on_progress=progress.append,
        on_file=lambda o: ended.append(o.path),
    )

    assert result.ok, result.failed
    assert sorted(ended) == sorted(files)
    assert sum(progress) == result.bytes_transferred == sum(map(len, files.values()))
    assert len(progress) == len([data for data in files.values() if data])  # one report per file that had bytes
    assert store_tree(store, "p") == files
