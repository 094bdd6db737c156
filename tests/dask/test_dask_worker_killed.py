"""A worker process of the cluster is SIGKILLed while files of an atomic tree are in flight on it.

Deterministic: instead of sleeping in a hook and hoping the kill lands in the
sleep, a ``Gate`` plugin (shipped pickled with a ``TransferManager``) holds
every file where the test wants it and touches a marker; the test waits for
the markers, kills a worker that holds a file, then releases the rest.
Dask reruns the killed worker's tasks on the other worker (its nanny starts a
new worker meanwhile). The module runs last: it waits for the cluster to have
two workers again.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend
from rst_dask_kit import Gate, local_tree, make_tree, markers, wait_until

import remote_store_transfer as rst
from remote_store_transfer import TreeResult

TREE_TIMEOUT = 180.0
"""Seconds before a tree that never ends fails the test (a hang guard; a healthy run takes a few seconds)."""


def _known(client: Any, address: str) -> bool:
    """``True`` while the scheduler still counts the worker at *address* among its workers."""
    return address in client.scheduler_info()["workers"]


@pytest.fixture
def two_workers(dask_client: Any) -> Iterator[Any]:
    """The client, with both workers up before the test and again after it (the nanny restarts a killed one)."""
    dask_client.wait_for_workers(2, timeout=60)
    yield dask_client
    dask_client.wait_for_workers(2, timeout=60)


def _run_tree(client: Any, manager: Any, operation: str, store: Store, tmp_path: Path) -> TreeResult:
    if operation == "upload":
        return manager.upload_tree(store, tmp_path / "src", "up", executor=client, atomic=True)
    return manager.download_tree(store, "data", tmp_path / "out", executor=client, atomic=True)


@pytest.mark.parametrize(
    ("operation", "where"),
    [
        pytest.param("upload", "pre_transfer", id="upload-killed-before-writing"),
        pytest.param("upload", "on_chunk", id="upload-killed-mid-write"),
        pytest.param("download", "pre_transfer", id="download-killed-before-writing"),
        pytest.param("download", "on_chunk", id="download-killed-mid-write"),
    ],
)
def test_a_killed_worker_ends_the_tree_with_nothing_partial_and_a_rerun_completes(
    two_workers, tmp_path: Path, operation: str, where: str
):
    """The tree ends; each file is transferred or failed; the destination holds only whole, correct files.

    ``upload``: local folder -> LocalBackend store (its ``write_atomic`` writes a
    temp file beside the target, then renames it). ``download``: LocalBackend
    store -> local folder (this package's ``.<name>.<hex>.part`` temp file).
    ``killed-before-writing``: the victim's files are held in ``pre_transfer``.
    ``killed-mid-write``: they are held at their first chunk, their temp file
    created and open. docs/dask.md promises: "With ``atomic=True`` nothing
    partial remains: the killed write never committed." The destination is
    listed with hidden files included, after a re-run with the default
    ``update="missing"`` that must complete the tree.

    Temp files of the killed writes: this package's own
    (``.<name>.<tag>.<hex>.part`` from ``streaming._write_local_atomic``) carry
    the tree's tag and are removed by the tree once every file has ended;
    remote-store's ``LocalBackend.write_atomic`` temp file (``tmpXXXXXXXX``)
    stays, as docs/dask.md says.
    """
    client = two_workers
    (tmp_path / "store").mkdir()
    store = Store(backend=LocalBackend(root=str(tmp_path / "store")))
    if operation == "upload":
        files = make_tree(tmp_path / "src", 30)
        destination = tmp_path / "store" / "up"
    else:
        files = make_tree(tmp_path / "store" / "data", 30)
        destination = tmp_path / "out"
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = rst.TransferManager([Gate(gate, where)])
    caller = ThreadPoolExecutor(1, thread_name_prefix="killed-worker-tree")
    try:
        running = caller.submit(_run_tree, client, manager, operation, store, tmp_path)
        wait_until(lambda: len(markers(gate)) >= 2, "two files held in flight on the workers")
        victim = markers(gate)[0][0]
        (address,) = [address for address, pid in client.run(os.getpid).items() if pid == victim]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not _known(client, address), "the scheduler to drop the killed worker")
    finally:
        (gate / "release").touch()
    try:
        result = running.result(timeout=TREE_TIMEOUT)  # the tree ends
    finally:
        caller.shutdown(wait=False)

    assert {where_ for _, where_ in markers(gate)} == {where}
    assert result.skipped == []
    assert set(result.transferred).isdisjoint(result.failed)
    assert sorted([*result.transferred, *result.failed]) == sorted(files)
    after_kill = local_tree(destination)
    for rel in set(after_kill) & set(files):
        assert after_kill[rel] == files[rel], rel  # no partial file under a final name
    for rel in result.transferred:
        assert after_kill.get(rel) == files[rel], rel

    again = _run_tree(client, rst, operation, store, tmp_path)

    assert again.ok, again.failed
    assert sorted([*again.transferred, *again.skipped]) == sorted(files)
    assert sorted(again.transferred) == sorted(set(files) - set(result.transferred))
    final = local_tree(destination)
    assert {rel: final.get(rel) for rel in files} == files
    leftovers = sorted(set(final) - set(files))
    if operation == "upload" and where == "on_chunk":
        # remote-store's LocalBackend.write_atomic writes tempfile.mkstemp()'s "tmpXXXXXXXX" beside the target
        # and removes it only when it is still running: a killed process leaves it (docs/dask.md says so). Its
        # name is the store's own; the tree cannot tell it from a user's file, so it does not touch it.
        assert leftovers, "the killed worker held a write_atomic temp file open: it should be left"
        assert all(re.fullmatch(r"(.*/)?tmp[a-z0-9_]{8}", rel) for rel in leftovers), leftovers
        assert all(final[rel] != files.get(rel) for rel in leftovers)
    else:
        # this package's own temp files (.NAME.TAG.HEX.part) carry the tree's tag: the tree removes those of a
        # dead worker once every file has ended
        assert leftovers == [], f"temp files of the killed writes left in the destination: {leftovers}"
