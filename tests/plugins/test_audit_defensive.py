"""The audit writer defends its chain and its records: a damaged last record, a record that cannot be built."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import AuditError, TransferManager, enable_plugin
from remote_store_transfer.audit import FileSink, verify_chain

KEY = "defensive-key"


def failures(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "audit.write_failed"]


def upload_one(manager: TransferManager, tmp_path, name: str = "f") -> Store:
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload")
    store = Store(backend=MemoryBackend())
    manager.upload(store, source, name)
    return store


# --------------------------------------------------------------------------------------------- the last record


def rehash_sha256(line: bytes, **changes) -> bytes:
    record = json.loads(line)
    record.pop("hash")
    record.update(changes)
    body = json.dumps(record, separators=(",", ":")).encode()
    return body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'


def edit_last(log, replace) -> bytes:
    lines = log.read_bytes().splitlines()
    lines[-1] = replace(lines[-1])
    log.write_bytes(b"\n".join(lines) + b"\n")
    return log.read_bytes()


@pytest.mark.parametrize(
    ("key", "edit"),
    [
        pytest.param(None, lambda line: line.replace(b'"bytes":7', b'"bytes":8'), id="edited, no key"),
        pytest.param(KEY, lambda line: line.replace(b'"bytes":7', b'"bytes":8'), id="edited, key"),
        pytest.param(KEY, lambda line: rehash_sha256(line, bytes=8), id="edited and re-hashed without the key"),
    ],
)
def test_appending_after_an_edited_last_record_is_refused(tmp_path, caplog, key, edit):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, key=key)
    upload_one(manager, tmp_path)
    upload_one(manager, tmp_path)
    damaged = edit_last(log, edit)
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    with pytest.raises(AuditError, match="its last record is damaged") as caught:
        upload_one(manager, tmp_path)
    assert "hash does not match" in str(caught.value)
    assert log.read_bytes() == damaged  # nothing appended after it
    assert failures(caplog)


def test_appending_after_an_edited_last_record_with_on_failure_log(tmp_path, caplog):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, on_failure="log")
    upload_one(manager, tmp_path)
    damaged = edit_last(log, lambda line: line.replace(b'"bytes":7', b'"bytes":8'))
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    store = upload_one(manager, tmp_path)  # goes on
    assert store.exists("f")
    assert log.read_bytes() == damaged
    (logged,) = failures(caplog)
    assert "its last record is damaged" in logged.getMessage()


def test_a_log_written_without_the_key_is_not_extended_with_it(tmp_path):
    log = tmp_path / "audit.jsonl"
    FileSink(log).append({"id": "a"})
    with pytest.raises(AuditError, match="not made with this key"):
        FileSink(log, key=KEY).append({"id": "b"})
    FileSink(log).append({"id": "b"})  # an intact last record: appending goes on
    assert verify_chain(log).ok and verify_chain(log).records == 2


# --------------------------------------------------------------------------------------------- building the record


def broken_actor(context: object) -> str:
    raise RuntimeError("no user in this context")


def test_an_actor_that_raises_with_on_failure_raise(tmp_path, caplog):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, actor=broken_actor)
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    with pytest.raises(AuditError, match="its record could not be built: RuntimeError: no user") as caught:
        upload_one(manager, tmp_path)
    error = caught.value
    assert error.outcome == "success"
    assert error.record["operation"] == "upload" and error.record["destination"]["path"] == "f"
    assert isinstance(error.__cause__, RuntimeError)
    (logged,) = failures(caplog)
    assert "could not be built" in logged.getMessage() and error.record["id"] in logged.getMessage()
    assert logged.stage == "build" and logged.transfer_id == error.record["id"]
    assert not log.exists()  # no partial record in the chain


def test_an_actor_that_raises_with_on_failure_log(tmp_path, caplog):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    calls = []

    def sometimes(context: object) -> str:
        calls.append(context)
        if len(calls) == 1:
            raise RuntimeError("no user yet")
        return "bob"

    enable_plugin("audit", manager=manager, path=log, actor=sometimes, on_failure="log")
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    store = upload_one(manager, tmp_path, "first")  # goes on, as the docs promise
    assert store.exists("first")
    (logged,) = failures(caplog)
    assert '"operation":"upload"' in logged.getMessage() and "no user yet" in logged.getMessage()
    upload_one(manager, tmp_path, "second")
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["actor"]["user"] == "bob" and record["destination"]["path"] == "second"


def test_an_actor_that_raises_in_a_tree(tmp_path, caplog):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, actor=broken_actor, on_failure="log")
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("a", "b"):
        (tree / name).write_bytes(b"x")
    caplog.set_level(logging.ERROR, logger="remote_store_transfer")
    store = Store(backend=MemoryBackend())
    result = manager.upload_tree(store, tree, "in", max_workers=1)
    assert result.ok and store.exists("in/a") and store.exists("in/b")
    logged = failures(caplog)
    assert len(logged) == 3  # both files and the batch record
    (batch,) = [r for r in logged if getattr(r, "batch_id", None)]
    message = batch.getMessage()
    assert "tree" in message and '"kind":"batch"' in message and '"operation":"upload_tree"' in message
    assert all(id_ in message for id_ in [r.transfer_id for r in logged if getattr(r, "transfer_id", None)])
    assert not log.exists()


def test_an_actor_that_raises_in_a_tree_with_on_failure_raise(tmp_path):
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=tmp_path / "audit.jsonl", actor=broken_actor)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_bytes(b"x")
    with pytest.raises(AuditError, match=r"tree batch-.*could not be built"):
        manager.upload_tree(Store(backend=MemoryBackend()), tree, "in", retries=0)


@pytest.mark.parametrize("name", [b"source.bin", os.fsencode("caf\u00e9.bin"), b"raw-\xff.bin"])
def test_a_bytes_local_path_is_recorded_decoded(tmp_path, name):
    log = tmp_path / "audit.jsonl"
    manager = TransferManager()
    enable_plugin("audit", manager=manager, path=log, key=KEY)
    source = os.path.join(os.fsencode(tmp_path), name)
    with open(source, "wb") as fh:
        fh.write(b"payload")
    store = Store(backend=MemoryBackend())
    manager.upload(store, source, "f")
    manager.download(store, "f", os.path.join(os.fsencode(tmp_path), b"back-" + name))
    upload, download = (json.loads(line) for line in log.read_text().splitlines())
    assert upload["source"] == {"local": os.fsdecode(source)}
    assert download["destination"] == {"local": os.fsdecode(os.path.join(os.fsencode(tmp_path), b"back-" + name))}
    assert verify_chain(log, key=KEY).ok
