"""Plugins on a real Dask cluster: which hooks run in the worker processes, and which stay in the caller."""

from __future__ import annotations

import json
import os
from pathlib import Path

from remote_store import Store
from remote_store.backends import LocalBackend
from rst_dask_kit import PROBE_ENTRY_POINT, CallerSpy, local_tree, make_tree, probe_events, store_tree

import remote_store_transfer as rst


def _store(root: Path) -> Store:
    root.mkdir()
    return Store(backend=LocalBackend(root=str(root)))


def test_an_installed_plugin_fires_in_the_workers_and_a_hand_registered_one_only_in_the_caller(
    dask_client, worker_pids, probe_dir, tmp_path
):
    """Per-file hooks of a tree on a cluster run in the worker processes, ``pre_batch``/``post_batch`` in the caller.

    The probe is a third-party plugin installed as pip would (entry point), in
    this process and in the workers; its ``pre_transfer``/``post_transfer``
    must have run for every file, in worker pids only, with the caller's batch
    id. ``CallerSpy`` is registered by hand in the caller's process-wide
    manager: such plugins do not travel (documented in docs/dask.md), so it
    sees ``pre_batch``/``post_batch`` -- in this process, with
    ``batch.remote`` -- and none of the files' hooks.
    """
    files = make_tree(tmp_path / "src", 12)
    store = _store(tmp_path / "dst")
    spy = CallerSpy()
    rst.plugin_manager().register(spy, name="caller-spy")
    assert PROBE_ENTRY_POINT in [p.name for p in rst.list_plugins()]  # installed here too: it could fire here

    result = rst.upload_tree(store, tmp_path / "src", "up", executor=dask_client)

    assert result.ok, result.failed
    assert sorted(result.transferred) == sorted(files)
    assert store_tree(store, "up") == files
    events = probe_events(probe_dir, result.batch_id)
    expected = {f"up/{rel}" for rel in files}
    assert sorted(e["destination"] for e in events if e["event"] == "pre") == sorted(expected)
    assert sorted(e["destination"] for e in events if e["event"] == "post") == sorted(expected)
    assert {e["batch"] for e in events} == {result.batch_id}
    pids = {e["pid"] for e in events}
    assert os.getpid() not in pids
    assert pids <= worker_pids
    caller = os.getpid()
    assert spy.batches == [
        ("pre_batch", caller, result.batch_id, True),
        ("post_batch", caller, result.batch_id, True),
    ]
    assert spy.files == []  # hand-registered plugins stay in the caller: the files never ran here


def test_the_installed_plugin_fires_in_the_workers_of_a_download_tree(dask_client, worker_pids, probe_dir, tmp_path):
    """The same for ``download_tree`` (store -> local folder written by the workers)."""
    store = _store(tmp_path / "src")
    files = make_tree(tmp_path / "src" / "data", 6)
    result = rst.download_tree(store, "data", tmp_path / "out", executor=dask_client)
    assert result.ok, result.failed
    assert local_tree(tmp_path / "out") == files
    events = probe_events(probe_dir, result.batch_id)
    assert sorted(e["source"] for e in events if e["event"] == "post") == sorted(f"data/{rel}" for rel in files)
    assert {e["pid"] for e in events} <= worker_pids


def test_a_builtin_plugin_enabled_in_the_caller_fires_on_the_workers(dask_client, worker_pids, tmp_path):
    """``enable_plugin("audit", path=...)`` in the caller travels: the per-file records are written by worker pids.

    The batch record (``post_batch``) is written by the caller, with ``remote`` true.
    """
    files = make_tree(tmp_path / "src", 8)
    log = tmp_path / "audit.jsonl"
    rst.enable_plugin("audit", path=log)
    store = _store(tmp_path / "dst")

    result = rst.upload_tree(store, tmp_path / "src", "up", executor=dask_client)

    assert result.ok, result.failed
    records = [json.loads(line) for line in log.read_text().splitlines()]
    per_file = [r for r in records if r.get("kind") != "batch"]
    (batch,) = [r for r in records if r.get("kind") == "batch"]
    assert sorted(r["destination"]["path"] for r in per_file) == sorted(f"up/{rel}" for rel in files)
    assert {r["outcome"] for r in per_file} == {"success"}
    assert {r["actor"]["pid"] for r in per_file} <= worker_pids
    assert batch["id"] == result.batch_id
    assert batch["actor"]["pid"] == os.getpid()
    assert batch["remote"] is True
    assert batch["counts"]["transferred"] == len(files)
