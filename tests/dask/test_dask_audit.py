"""The audit chain of trees run on a Dask cluster: written by the caller and both workers, and intact."""

from __future__ import annotations

import json

from remote_store import Store
from remote_store.backends import LocalBackend
from rst_dask_kit import make_tree

import remote_store_transfer as rst
from remote_store_transfer.audit import verify_chain


def test_the_audit_chain_of_cluster_trees_verifies_and_lists_every_file_record(dask_client, worker_pids, tmp_path):
    """Two trees (upload, then download) append to one log from three processes; the chain stays intact.

    Each batch record's ``files`` ids all have their per-file record in the
    log, and every per-file record belongs to a batch record. A tampered copy
    of the log fails the check (the check can fail).
    """
    files = make_tree(tmp_path / "src", 16)
    log = tmp_path / "audit.jsonl"
    rst.enable_plugin("audit", path=log)
    (tmp_path / "dst").mkdir()
    store = Store(backend=LocalBackend(root=str(tmp_path / "dst")))

    up = rst.upload_tree(store, tmp_path / "src", "up", executor=dask_client, atomic=True)
    down = rst.download_tree(store, "up", tmp_path / "out", executor=dask_client, atomic=True)

    assert up.ok, up.failed
    assert down.ok, down.failed
    verified = verify_chain(log)
    assert verified.ok, str(verified)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert verified.records == len(records) == 2 * len(files) + 2
    batches = {r["id"]: r for r in records if r.get("kind") == "batch"}
    per_file = {r["id"]: r for r in records if r.get("kind") != "batch"}
    assert list(batches) == [up.batch_id, down.batch_id]
    listed = [tid for batch in batches.values() for tid in batch["files"]]
    assert len(listed) == len(set(listed)) == 2 * len(files)
    assert set(listed) == set(per_file)  # every listed id has its record, and no record is unlisted
    for batch_id, operation in ((up.batch_id, "upload"), (down.batch_id, "download")):
        assert {per_file[tid]["operation"] for tid in batches[batch_id]["files"]} == {operation}
    assert {r["actor"]["pid"] for r in per_file.values()} <= worker_pids

    tampered = tmp_path / "tampered.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    altered = lines[3].replace('"outcome":"success"', '"outcome":"failure"', 1)
    assert altered != lines[3]
    lines[3] = altered
    tampered.write_text("".join(lines))
    assert not verify_chain(tampered).ok
