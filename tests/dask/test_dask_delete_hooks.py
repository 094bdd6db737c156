"""Deletions in worker processes (a ``ProcessPoolExecutor``) run the deletion hooks there: policy, audit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend
from rst_dask_kit import store_tree

import remote_store_transfer as rst
from remote_store_transfer import TransferDenied
from remote_store_transfer.audit import verify_logs
from remote_store_transfer.plugin.policy import store_location

KEPT = {"a.txt": b"alpha"}
EXTRA = {"stale.txt": b"stale", "sub/stale.txt": b"stale too"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A local store whose ``mirror/`` holds the source's file and two the source does not have."""
    (tmp_path / "store").mkdir()
    store = Store(backend=LocalBackend(root=str(tmp_path / "store")))
    for rel, data in {**KEPT, **EXTRA}.items():
        store.write(f"mirror/{rel}", data)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(KEPT["a.txt"])
    return store


def _records(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for log in sorted(folder.glob("audit-*.jsonl")) for line in log.read_text().splitlines()]


def test_read_only_refuses_deletions_in_worker_processes_and_the_audit_there_records_them(pool, store, tmp_path):
    rst.enable_plugin("audit", path=str(tmp_path / "audit-{pid}.jsonl"))
    rst.enable_plugin("policy", read_only=[store_location(store, "mirror") + "/*"])

    result = rst.upload_tree(store, tmp_path / "src", "mirror", executor=pool, delete=True, max_delete=None)

    assert sorted(result.failed) == sorted(EXTRA)
    assert all(isinstance(e, TransferDenied) and e.rule == "read_only" for e in result.failed.values())
    assert store_tree(store, "mirror") == {**KEPT, **EXTRA}
    deletions = [r for r in _records(tmp_path) if r.get("operation") == "delete"]
    assert sorted(r["target"]["path"] for r in deletions) == sorted(f"mirror/{p}" for p in EXTRA)  # type: ignore[index]
    assert {r["outcome"] for r in deletions} == {"failure"}
    assert os.getpid() not in {r["actor"]["pid"] for r in deletions}  # type: ignore[index]
    report = verify_logs(sorted(tmp_path.glob("audit-*.jsonl")))
    assert report.ok, report
    assert report.listed == 2  # the batch record lists both deletions; their records are in the workers' logs


def test_deletions_in_worker_processes_are_audited_and_the_logs_verify(pool, store, tmp_path):
    rst.enable_plugin("audit", path=str(tmp_path / "audit-{pid}.jsonl"))

    result = rst.upload_tree(store, tmp_path / "src", "mirror", executor=pool, delete=True, max_delete=None)

    assert result.ok, result.failed
    assert sorted(result.deleted) == sorted(EXTRA)
    assert store_tree(store, "mirror") == KEPT
    records = _records(tmp_path)
    deletions = [r for r in records if r.get("operation") == "delete"]
    assert {r["outcome"] for r in deletions} == {"success"}
    (batch,) = [r for r in records if r.get("kind") == "batch"]
    assert sorted(batch["files"]) == sorted(r["id"] for r in deletions)  # type: ignore[arg-type]
    report = verify_logs(sorted(tmp_path.glob("audit-*.jsonl")))
    assert report.ok, report
    assert report.listed == 2
    # a worker's deletion record lost: the batch record's check finds it
    lost = next(log for log in tmp_path.glob("audit-*.jsonl") if '"operation":"delete"' in log.read_text())
    lines = lost.read_text().splitlines(keepends=True)
    lost.write_text("".join(line for line in lines if '"operation":"delete"' not in line))
    assert verify_logs(sorted(tmp_path.glob("audit-*.jsonl"))).missing
