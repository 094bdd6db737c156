"""The audit plugin on tree calls: one record per file plus one batch record, in one valid hash chain."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import AuditError, TransferManager
from remote_store_transfer.audit import AuditPlugin, FileSink, verify_chain

FILES = {
    "a.txt": b"alpha" * 100,
    "b.bin": bytes(range(256)) * 40,
    "sub/c.txt": b"gamma\n" * 300,
    "sub/bad.bin": b"refused" * 50,
    "sub/deep/d.csv": b"1,2,3\n" * 1000,
}


class Refused(Exception):
    """What the refusing plugin raises: not a transient error, so the file is tried once."""


class RefusePath:
    """Fails the transfer of every file whose destination path ends with *name*, before any byte moves."""

    def __init__(self, name: str) -> None:
        self.name = name

    @rst.hookimpl
    def pre_transfer(self, context: Any) -> None:
        if context.destination.path.endswith(self.name):
            raise Refused(f"{self.name} is refused, password=hunter2")


class Vetoed(Exception):
    pass


class VetoTree:
    @rst.hookimpl
    def pre_batch(self, batch: Any) -> None:
        raise Vetoed(f"no trees today: {batch.operation}")


class ListSink:
    """A real sink keeping records in memory, failing for the records *fail* selects."""

    def __init__(self, fail: Any = lambda record: False) -> None:
        self.records: list[dict] = []
        self.fail = fail

    def append(self, record: dict) -> None:
        if self.fail(record):
            raise OSError("the audit service is down")
        self.records.append(record)

    def describe(self) -> str:
        return "a list"


def make_tree(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def is_batch(record: dict) -> bool:
    return record.get("kind") == "batch"


def test_a_tree_writes_its_file_records_then_one_batch_record(tmp_path, memory_store):
    log = tmp_path / "audit.jsonl"
    source = make_tree(tmp_path / "src")
    manager = TransferManager([AuditPlugin(path=log, actor="alice", host="build-7"), RefusePath("/sub/bad.bin")])

    result = manager.upload_tree(memory_store, source, "in", retries=0, max_workers=4)

    assert sorted(result.failed) == ["sub/bad.bin"] and len(result.transferred) == 4
    records = read_log(log)
    assert len(records) == 6
    *files, batch = records
    assert not any(is_batch(r) for r in files)
    assert all("kind" not in r for r in files)  # file records are unchanged: old readers keep working
    assert {r["source"]["local"] for r in files} == {str(source / name) for name in FILES}
    assert {r["outcome"] for r in files if r["source"]["local"].endswith("bad.bin")} == {"failure"}

    assert batch["kind"] == "batch"
    assert batch["id"] == result.batch_id
    assert batch["files"] == [r["id"] for r in files]  # every file record, in the order of the log
    assert batch["unrecorded"] == []
    assert batch["operation"] == "upload_tree"
    assert batch["actor"]["user"] == "alice" and batch["actor"]["host"] == "build-7"
    assert batch["source"] == {"local": str(source)}
    assert batch["destination"]["store"] == repr(memory_store) and batch["destination"]["path"] == "in"
    assert batch["counts"] == {"transferred": 4, "skipped": 0, "failed": 1, "deleted": 0}
    assert batch["bytes"] == result.bytes_transferred == sum(len(d) for n, d in FILES.items() if n != "sub/bad.bin")
    assert batch["ok"] is False and batch["outcome"] == "failure" and batch["dry_run"] is False
    assert batch["listing_complete"] is True and batch["planned"] == {
        "files": 5,
        "bytes": sum(map(len, FILES.values())),
    }
    assert batch["failed"] == [
        {"path": "sub/bad.bin", "error": {"type": "Refused", "message": "/sub/bad.bin is refused, password=***"}}
    ]
    assert batch["deleted"] == []
    assert batch["options"]["max_workers"] == 4 and batch["options"]["retries"] == 0
    assert batch["options"]["include"] == [] and batch["options"]["dry_run"] is False
    assert batch["start"] <= min(r["start"] for r in files) and batch["end"] >= max(r["end"] for r in files)
    assert batch["duration_s"] >= 0
    assert "hunter2" not in log.read_text()
    assert verify_chain(log).ok

    # A second tree (and a single-file call) in the same log: the chain goes on, each batch lists its own files.
    other = Store(backend=MemoryBackend())
    second = manager.transfer_tree(memory_store, "in", other, "copy")
    manager.upload(other, source / "a.txt", "single.txt")
    records = read_log(log)
    assert [r["seq"] for r in records] == list(range(1, 13))
    new_files, second_batch, single = records[6:10], records[10], records[11]
    assert second_batch["kind"] == "batch" and second_batch["id"] == second.batch_id != batch["id"]
    assert second_batch["operation"] == "transfer_tree"
    assert (second_batch["ok"], second_batch["outcome"]) == (True, "success")
    assert second_batch["files"] == [r["id"] for r in new_files]
    assert second_batch["counts"] == {"transferred": 4, "skipped": 0, "failed": 0, "deleted": 0}
    assert second_batch["source"]["path"] == "in" and second_batch["destination"]["path"] == "copy"
    assert "kind" not in single and single["operation"] == "upload"
    result = verify_chain(log)
    assert result.ok and result.records == 12, result


def test_many_files_concurrently_keep_the_chain_and_the_list_exact(tmp_path, memory_store):
    log = tmp_path / "audit.jsonl"
    files = {f"d{i % 5}/f{i:03d}.bin": bytes([i]) * (100 + i) for i in range(60)}
    source = make_tree(tmp_path / "src", files)
    manager = TransferManager([AuditPlugin(path=log)])

    result = manager.upload_tree(memory_store, source, "many", max_workers=8)

    assert result.ok and len(result.transferred) == 60
    *file_records, batch = read_log(log)
    assert batch["kind"] == "batch" and len(file_records) == 60
    assert batch["files"] == [r["id"] for r in file_records]
    assert len(set(batch["files"])) == 60
    assert verify_chain(log).ok


def test_dry_run_writes_only_the_batch_record(tmp_path, memory_store):
    log = tmp_path / "audit.jsonl"
    source = make_tree(tmp_path / "src")
    manager = TransferManager([AuditPlugin(path=log)])

    result = manager.upload_tree(memory_store, source, "in", dry_run=True)

    (batch,) = read_log(log)
    assert batch["kind"] == "batch" and batch["dry_run"] is True and batch["options"]["dry_run"] is True
    assert batch["files"] == []
    assert batch["counts"]["transferred"] == len(result.transferred) == 5
    assert batch["planned"] == {"files": 5, "bytes": sum(len(d) for d in FILES.values())}
    assert not list(memory_store.list_files("", recursive=True))
    assert verify_chain(log).ok


def test_a_vetoed_tree_still_gets_its_batch_record(tmp_path, memory_store):
    log = tmp_path / "audit.jsonl"
    source = make_tree(tmp_path / "src")
    manager = TransferManager([AuditPlugin(path=log), VetoTree()])

    with pytest.raises(Vetoed, match="no trees today"):
        manager.upload_tree(memory_store, source, "in")

    (batch,) = read_log(log)
    assert batch["kind"] == "batch" and batch["files"] == []
    assert batch["counts"] == {"transferred": 0, "skipped": 0, "failed": 0, "deleted": 0}
    # Nothing failed, but nothing was even listed: not a success.
    assert (batch["outcome"], batch["ok"], batch["listing_complete"]) == ("incomplete", False, False)
    assert batch["planned"] == {"files": None, "bytes": None}
    assert verify_chain(log).ok
    assert not list(memory_store.list_files("", recursive=True))


def test_batch_record_write_failure_raises_by_default(tmp_path, memory_store, caplog):
    sink = ListSink(fail=is_batch)
    source = make_tree(tmp_path / "src")
    manager = TransferManager([AuditPlugin(sink=sink)])
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")

    with pytest.raises(AuditError, match=r"tree batch-.* \(upload_tree, success\) could not be recorded") as info:
        manager.upload_tree(memory_store, source, "in")

    assert info.value.record is not None and info.value.record["kind"] == "batch"
    assert info.value.outcome == "success"
    assert len(sink.records) == 5  # the files were recorded, and they did move
    assert info.value.record["files"] == [r["id"] for r in sink.records]
    (logged,) = [r for r in caplog.records if getattr(r, "event", None) == "audit.write_failed"]
    assert logged.batch_id == info.value.record["id"] and "audit service is down" in logged.getMessage()


def test_on_failure_log_returns_the_result_and_lists_unrecorded_files(tmp_path, memory_store, caplog):
    def fail(record: dict) -> bool:
        return is_batch(record) or record["source"]["local"].endswith("c.txt")

    sink = ListSink(fail=fail)
    source = make_tree(tmp_path / "src")
    plugin = AuditPlugin(sink=sink, on_failure="log")
    manager = TransferManager([plugin])
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")

    result = manager.upload_tree(memory_store, source, "in")

    assert result.ok and len(result.transferred) == 5
    failures = [r for r in caplog.records if getattr(r, "event", None) == "audit.write_failed"]
    assert len(failures) == 2  # the c.txt record and the batch record
    batch = json.loads(failures[-1].getMessage().split("; the record: ", 1)[1])
    assert batch["kind"] == "batch" and batch["id"] == failures[-1].batch_id == result.batch_id
    assert batch["files"] == [r["id"] for r in sink.records] and len(batch["files"]) == 4
    assert batch["unrecorded"] == [failures[0].transfer_id]

    # With the sink back, the next tree is recorded normally (no state left over from the last one).
    sink.fail = lambda record: False
    again = manager.upload_tree(memory_store, source, "again")
    assert sink.records[-1]["kind"] == "batch" and sink.records[-1]["id"] == again.batch_id
    assert len(sink.records[-1]["files"]) == 5 and sink.records[-1]["unrecorded"] == []


def test_two_audit_plugins_each_list_their_own_records(tmp_path, memory_store):
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    source = make_tree(tmp_path / "src")
    manager = TransferManager([AuditPlugin(path=first), AuditPlugin(path=second)])

    manager.upload_tree(memory_store, source, "in")

    for log in (first, second):
        *files, batch = read_log(log)
        assert batch["files"] == [r["id"] for r in files] and len(files) == 5
        assert verify_chain(log).ok


def test_appending_after_a_long_batch_record(tmp_path):
    """The sink reads the last record back before each append: a long one (a big tree) is read in one pass."""
    log = tmp_path / "audit.jsonl"
    sink = FileSink(log)
    sink.append({"kind": "batch", "files": [f"id-{i:08d}" for i in range(50_000)]})  # a line of ~750 kB
    sink.append({"id": "next"})
    records = read_log(log)
    assert [r["seq"] for r in records] == [1, 2] and records[1]["prev"] == records[0]["hash"]
    assert verify_chain(log).ok
