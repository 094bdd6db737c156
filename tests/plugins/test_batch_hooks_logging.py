"""The logging plugin on tree calls: exactly one start and one end record per tree, around the files' records."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import TransferManager
from remote_store_transfer.plugin.logging import LoggingPlugin

LOGGER = "remote_store_transfer"
FILES = {
    "a.txt": b"alpha" * 100,
    "sub/b.bin": bytes(range(256)) * 40,
    "sub/deep/c.csv": b"1,2,3\n" * 1000,
}
TOTAL = sum(len(data) for data in FILES.values())


class Refused(Exception):
    pass


class Vetoed(Exception):
    pass


class VetoTree:
    @rst.hookimpl
    def pre_batch(self, batch: Any) -> None:
        raise Vetoed("no trees today")


class RefusePath:
    def __init__(self, name: str) -> None:
        self.name = name

    @rst.hookimpl
    def pre_transfer(self, context: Any) -> None:
        if context.destination.path.endswith(self.name):
            raise Refused(f"{self.name} is refused")


def make_tree(root: Path) -> Path:
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def ours(caplog, *events: str, logger: str = LOGGER) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and hasattr(r, "event") and (not events or r.event in events)]


def test_one_start_and_one_end_record_per_tree(tmp_path, memory_store, caplog):
    source = make_tree(tmp_path / "src")
    manager = TransferManager([LoggingPlugin()])
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    result = manager.upload_tree(memory_store, source, "in")

    records = ours(caplog)
    events = [r.event for r in records]
    assert events[0] == "batch.start" and events[-1] == "batch.end"
    assert events.count("batch.start") == events.count("batch.end") == 1
    assert events.count("transfer.start") == events.count("transfer.end") == 3  # per-file records unchanged
    start, end = records[0], records[-1]
    assert start.levelno == end.levelno == logging.INFO
    assert start.batch_id == end.batch_id == result.batch_id
    assert (start.operation, start.source, start.destination) == (
        "upload_tree",
        f"local:{source}",
        f"{memory_store!r}:in",
    )
    assert start.dry_run is False
    assert start.planned_files is None  # not known before the listing is read (not a dry run)
    assert start.getMessage() == f"tree {result.batch_id} started: upload_tree local:{source} -> {memory_store!r}:in"
    assert (end.outcome, end.ok) == ("success", True)
    assert (end.transferred, end.skipped, end.failed, end.deleted, end.bytes) == (3, 0, 0, 0, TOTAL)
    assert (end.planned_files, end.planned_bytes) == (3, TOTAL)
    assert end.duration_s >= 0
    message = end.getMessage()
    assert message.startswith(f"tree {result.batch_id} succeeded: upload_tree local:{source} -> ")
    assert f"3 transferred, 0 skipped, 0 failed, 0 deleted, {TOTAL} bytes in " in message


def test_a_tree_with_a_failed_file_ends_at_error(tmp_path, memory_store, caplog):
    source = make_tree(tmp_path / "src")
    manager = TransferManager([LoggingPlugin(), RefusePath("/sub/b.bin")])
    caplog.set_level(logging.INFO, logger=LOGGER)

    result = manager.upload_tree(memory_store, source, "in", retries=0)

    assert list(result.failed) == ["sub/b.bin"]
    (end,) = ours(caplog, "batch.end")
    assert end.levelno == logging.ERROR
    assert (end.outcome, end.ok, end.transferred, end.failed) == ("failure", False, 2, 1)
    assert end.getMessage().startswith(f"tree {result.batch_id} failed: upload_tree ")
    (failed_file,) = [r for r in ours(caplog, "transfer.end") if r.levelno == logging.ERROR]
    assert failed_file.error_type == "Refused"


def test_a_vetoed_tree_still_ends_with_one_error_record(tmp_path, memory_store, caplog):
    source = make_tree(tmp_path / "src")
    # VetoTree is registered last, so its pre_batch runs first: logging's pre_batch is never reached.
    manager = TransferManager([LoggingPlugin(), VetoTree()])
    caplog.set_level(logging.INFO, logger=LOGGER)

    with pytest.raises(Vetoed):
        manager.upload_tree(memory_store, source, "in")

    (end,) = ours(caplog)
    assert end.event == "batch.end" and end.levelno == logging.ERROR
    assert (end.outcome, end.ok, end.transferred, end.failed) == ("incomplete", False, 0, 0)
    assert end.getMessage().startswith("tree batch-") and " stopped: upload_tree " in end.getMessage()


def test_each_tree_gets_its_own_pair_of_records(tmp_path, memory_store, caplog):
    source = make_tree(tmp_path / "src")
    other = Store(backend=MemoryBackend())
    manager = TransferManager([LoggingPlugin()])
    caplog.set_level(logging.INFO, logger=LOGGER)

    first = manager.upload_tree(memory_store, source, "in")
    second = manager.transfer_tree(memory_store, "in", other, "copy")
    third = manager.download_tree(other, "copy", tmp_path / "back")

    pairs = [(r.event, r.batch_id, r.operation) for r in ours(caplog, "batch.start", "batch.end")]
    assert pairs == [
        ("batch.start", first.batch_id, "upload_tree"),
        ("batch.end", first.batch_id, "upload_tree"),
        ("batch.start", second.batch_id, "transfer_tree"),
        ("batch.end", second.batch_id, "transfer_tree"),
        ("batch.start", third.batch_id, "download_tree"),
        ("batch.end", third.batch_id, "download_tree"),
    ]
    ends = ours(caplog, "batch.end")
    assert [r.transferred for r in ends] == [3, 3, 3]
    assert ends[1].source == f"{memory_store!r}:in" and ends[1].destination == f"{other!r}:copy"
    assert ends[2].destination == f"local:{tmp_path / 'back'}"


def test_dry_run_start_record_has_the_plan(tmp_path, memory_store, caplog):
    source = make_tree(tmp_path / "src")
    manager = TransferManager([LoggingPlugin()])
    caplog.set_level(logging.INFO, logger=LOGGER)

    manager.upload_tree(memory_store, source, "in", dry_run=True)

    start, end = ours(caplog)  # no file moves in a dry run: no per-file records
    assert (start.event, end.event) == ("batch.start", "batch.end")
    assert start.dry_run is True and (start.planned_files, start.planned_bytes) == (3, TOTAL)
    assert start.getMessage().endswith(f", 3 files ({TOTAL} bytes) planned (dry run)")
    assert end.transferred == 3 and end.dry_run is True
    assert "would be transferred" in end.getMessage()


def test_level_and_logger_options_apply_to_tree_records(tmp_path, memory_store, caplog):
    source = make_tree(tmp_path / "src")
    manager = TransferManager([LoggingPlugin(logger="ops.trees", level="WARNING")])
    caplog.set_level(logging.WARNING, logger="ops.trees")

    manager.upload_tree(memory_store, source, "in")

    records = ours(caplog, "batch.start", "batch.end", logger="ops.trees")
    assert [(r.event, r.levelno) for r in records] == [("batch.start", logging.WARNING), ("batch.end", logging.WARNING)]
    assert not ours(caplog)  # nothing on the default logger


def test_each_deletion_gets_an_end_record(tmp_path, memory_store, caplog):
    from remote_store_transfer.plugin.policy import PolicyPlugin

    make_tree(tmp_path / "src")
    memory_store.write("in/stale.txt", b"stale")
    memory_store.write("in/guarded.txt", b"denied")
    manager = TransferManager([LoggingPlugin(), PolicyPlugin(upload={"deny": ["in/guarded*"]})])
    caplog.set_level(logging.INFO, logger=LOGGER)

    result = manager.upload_tree(memory_store, tmp_path / "src", "in", delete=True, max_delete=None)

    records = {r.target: r for r in ours(caplog, "delete.end")}
    assert sorted(records) == [f"{memory_store!r}:in/guarded.txt", f"{memory_store!r}:in/stale.txt"]
    done, denied = records[f"{memory_store!r}:in/stale.txt"], records[f"{memory_store!r}:in/guarded.txt"]
    assert (done.levelno, done.outcome, done.batch_id, done.size) == (logging.INFO, "success", result.batch_id, 5)
    assert (denied.levelno, denied.outcome, denied.error_type) == (logging.ERROR, "failure", "TransferDenied")
