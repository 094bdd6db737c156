"""Audit across processes: one chain per process ({host}/{pid} in the path), and verifying a set of logs.

A tree on a real ``ProcessPoolExecutor`` runs once per module (its logs are
copied into each test that tampers with them): the workers write the file
records, each to its own ``audit-<pid>.jsonl``, the caller writes the batch
record to its own. ``verify_logs`` and ``audit verify FILE...`` check each
chain and that every file record the batch lists is in one of the logs.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

import remote_store_transfer
from remote_store_transfer import ConfigError, TransferManager, enable_plugin
from remote_store_transfer.audit import (
    FileSink,
    StoreSink,
    main,
    verify_chain,
    verify_logs,
    verify_store,
)
from remote_store_transfer.config import CONFIG_ENV

KEY = "tree-audit-key"
FILES = 6
CLI_ENV_DROP = ("REMOTE_STORE_TRANSFER_",)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m remote_store_transfer ARGS`` with no plugin configuration from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLI_ENV_DROP)}
    command = [sys.executable, "-m", "remote_store_transfer", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)


# ------------------------------------------------------------------------------------ placeholders


def test_a_path_without_placeholders_is_unchanged(tmp_path):
    sink = FileSink(tmp_path / "audit.jsonl")
    assert sink.path == sink.template == str(tmp_path / "audit.jsonl")
    sink.append({"id": "a"})
    assert verify_chain(tmp_path / "audit.jsonl").records == 1


def test_placeholders_expand_in_the_writing_process(tmp_path, monkeypatch):
    sink = FileSink(tmp_path / "audit-{host}-{pid}.jsonl")
    assert sink.template.endswith("audit-{host}-{pid}.jsonl")
    assert "{" not in sink.path
    assert sink.path.endswith(f"-{os.getpid()}.jsonl")
    sink.append({"id": "a"})
    assert Path(sink.path).is_file()
    assert sink.describe() == f"file {sink.path}"
    monkeypatch.setattr(os, "getpid", lambda: 424242)  # a forked child: a new pid, a new file
    assert sink.path.endswith("-424242.jsonl")


def test_host_is_made_safe_for_a_file_name(tmp_path, monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "etl 3/prod")
    assert FileSink(tmp_path / "a-{host}.jsonl").path == str(tmp_path / "a-etl_3_prod.jsonl")


def test_doubled_braces_are_literal(tmp_path):
    assert FileSink(tmp_path / "a{{x}}-{pid}.jsonl").path == str(tmp_path / f"a{{x}}-{os.getpid()}.jsonl")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("audit-{user}.jsonl", "unknown placeholder {user}"),
        ("audit-{}.jsonl", "unknown placeholder {}"),
        ("audit-{pid:05d}.jsonl", "takes no format spec"),
        ("audit-{pid!r}.jsonl", "takes no format spec"),
        ("audit-{pid.jsonl", "expected '}'"),
        ("audit-}.jsonl", "Single '}'"),
    ],
)
def test_bad_placeholders_fail_at_construction(tmp_path, path, problem):
    with pytest.raises(ValueError, match="placeholder|brace") as info:
        FileSink(tmp_path / path)
    assert problem in str(info.value)
    assert "{host} and {pid}" in str(info.value) or "format spec" in str(info.value)
    with pytest.raises(ConfigError, match="placeholder"):
        enable_plugin("audit", manager=TransferManager(), path=str(tmp_path / path))
    with pytest.raises(ValueError, match="placeholder"):
        StoreSink(Store(backend=MemoryBackend()), path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_options_and_sinks_pickle(tmp_path):
    store = Store(backend=LocalBackend(root=str(tmp_path)))
    options = {"path": str(tmp_path / "audit-{host}-{pid}.jsonl"), "key": KEY}
    assert pickle.loads(pickle.dumps(options)) == options
    pickle.loads(pickle.dumps({"store": store, "prefix": "audit/{host}", "key": KEY}))
    sink = pickle.loads(pickle.dumps(FileSink(options["path"], key=KEY)))
    sink.append({"id": "a"})
    assert verify_chain(sink.path, key=KEY).ok

    original = StoreSink(store, "audit/{host}")
    original.append({"id": "a"})
    copy = pickle.loads(pickle.dumps(original))
    assert copy.chain != original.chain  # a copy never extends the chain it was copied from
    copy.append({"id": "b"})
    original.append({"id": "c"})
    assert copy.prefix == original.prefix and "{" not in copy.prefix
    assert verify_store(store, "audit") == verify_store(store, original.prefix)
    assert verify_store(store, "audit").ok and verify_store(store, "audit").records == 3


def _write(target: dict[str, Any] | FileSink, source: str, count: int, start: Any) -> None:
    """*count* uploads audited to *target* (the audit options, or a pickled sink), like a worker process."""
    manager = TransferManager()
    if isinstance(target, dict):
        enable_plugin("audit", manager=manager, **target)
    else:
        enable_plugin("audit", manager=manager, sink=target)
    store = Store(backend=MemoryBackend())
    start.wait()
    for i in range(count):
        manager.upload(store, source, f"{os.getpid()}/{i}")


def test_two_processes_write_two_intact_chains(tmp_path):
    source = tmp_path / "f"
    source.write_bytes(b"x" * 100)
    template = str(tmp_path / "logs" / "audit-{pid}.jsonl")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)  # both processes alive at once: two distinct pids
    targets: list[dict[str, Any] | FileSink] = [{"path": template, "key": KEY}, FileSink(template, key=KEY)]
    processes = [context.Process(target=_write, args=(target, str(source), 5, start)) for target in targets]
    for process in processes:
        process.start()
    pids = {process.pid for process in processes}
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    for process in processes:
        process.close()
    logs = sorted((tmp_path / "logs").iterdir())
    assert {log.name for log in logs} == {f"audit-{pid}.jsonl" for pid in pids}
    for log in logs:
        result = verify_chain(log, key=KEY)
        assert result.ok and result.records == 5, result
        assert {record["actor"]["pid"] for record in records(log)} == {int(log.stem.removeprefix("audit-"))}
    report = verify_logs(logs, key=KEY)
    assert report.ok and report.records == 10 and report.batches == 0


# ------------------------------------------------------------------------------------ a tree on processes


@dataclass(frozen=True)
class TreeLogs:
    folder: Path
    caller: Path  # holds the batch record
    workers: tuple[Path, ...]  # the file records
    batch: dict[str, Any]


@pytest.fixture(scope="module")
def tree_logs(tmp_path_factory: pytest.TempPathFactory) -> TreeLogs:
    """upload_tree of FILES files on ProcessPoolExecutor(2), audited with key to ``audit-{pid}.jsonl``."""
    root = tmp_path_factory.mktemp("tree")
    source, destination, folder = root / "src", root / "dst", root / "logs"
    for i in range(FILES):
        (source / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (source / f"d{i % 2}" / f"f{i}.bin").write_bytes(bytes([i]) * (100 + i))
    destination.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.delenv(CONFIG_ENV, raising=False)  # the workers inherit this environment
        remote_store_transfer.reset_plugin_manager()
        try:
            enable_plugin("audit", path=str(folder / "audit-{pid}.jsonl"), key=KEY)
            store = Store(backend=LocalBackend(root=str(destination)))
            with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
                result = remote_store_transfer.upload_tree(store, source, "up", executor=executor)
        finally:
            remote_store_transfer.reset_plugin_manager()
    assert result.ok and len(result.transferred) == FILES
    caller = folder / f"audit-{os.getpid()}.jsonl"
    [batch] = records(caller)
    workers = tuple(sorted(path for path in folder.iterdir() if path != caller))
    return TreeLogs(folder, caller, workers, batch)


def copy_logs(tree_logs: TreeLogs, tmp_path: Path) -> tuple[Path, list[Path]]:
    """The tree's logs, copied to *tmp_path*: ``(caller, workers)``."""
    shutil.copytree(tree_logs.folder, tmp_path / "logs")
    return tmp_path / "logs" / tree_logs.caller.name, [tmp_path / "logs" / path.name for path in tree_logs.workers]


def test_each_process_of_a_tree_writes_its_own_chain(tree_logs):
    batch = tree_logs.batch
    assert batch["kind"] == "batch" and batch["remote"] is True and batch["ok"] is True
    assert batch["actor"]["pid"] == os.getpid()
    assert len(batch["files"]) == FILES
    assert 1 <= len(tree_logs.workers) <= 2
    file_records = [record for path in tree_logs.workers for record in records(path)]
    assert sorted(record["id"] for record in file_records) == sorted(batch["files"])
    assert all("kind" not in record and record["actor"]["pid"] != os.getpid() for record in file_records)
    for path in tree_logs.workers:  # each worker's file is its own chain, of its own pid
        assert {record["actor"]["pid"] for record in records(path)} == {int(path.stem.removeprefix("audit-"))}


def test_the_logs_of_a_tree_verify_intact_and_complete(tree_logs):
    logs = [tree_logs.caller, *tree_logs.workers]
    report = verify_logs(logs, key=KEY)
    assert report.ok and report.intact and report.complete, report
    assert (report.batches, report.listed, report.records) == (1, FILES, FILES + 1)
    assert list(report.chains) == [str(path) for path in logs]
    assert str(report).startswith("OK: ")
    assert verify_logs([*logs, logs[0]], key=KEY).chains == report.chains  # a log given twice is read once

    unkeyed = verify_logs(logs)  # HMACs: without the key nothing verifies
    assert not unkeyed.ok and not any(result.ok for result in unkeyed.chains.values())


def test_audit_verify_cli_over_the_logs_of_a_tree(tree_logs, monkeypatch):
    monkeypatch.setenv("AUDIT_KEY", KEY)
    logs = [str(tree_logs.caller), *map(str, tree_logs.workers)]
    result = cli("audit", "verify", *logs, "--key-env", "AUDIT_KEY")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.splitlines()[-1] == f"batches: complete, 1 batch records list {FILES} file records, all present"
    )
    assert result.stderr == ""

    data = json.loads(cli("audit", "verify", *logs, "--key-env", "AUDIT_KEY", "--json").stdout)
    assert data["ok"] is data["intact"] is data["complete"] is True
    assert (data["batches"], data["listed"], data["missing"]) == (1, FILES, [])
    assert [log["file"] for log in data["logs"]] == logs and all(log["ok"] for log in data["logs"])

    alone = cli("audit", "verify", str(tree_logs.caller), "--key-env", "AUDIT_KEY", "--json")  # no worker logs
    assert alone.returncode == 6
    data = json.loads(alone.stdout)  # one FILE: the object it always was
    assert set(data) == {"file", "ok", "records", "first_bad", "reason"}
    assert (data["ok"], data["first_bad"]) == (False, 1)
    assert tree_logs.batch["id"] in data["reason"] and tree_logs.batch["files"][0] in data["reason"]

    anchored = cli("audit", "verify", *logs, "--anchor", f"1:{'0' * 64}")
    assert anchored.returncode == 2 and "exactly one FILE" in anchored.stderr


def test_a_removed_file_record_breaks_its_chain_and_the_batch(tree_logs, tmp_path):
    caller, workers = copy_logs(tree_logs, tmp_path)
    worker = max(workers, key=lambda path: len(records(path)))  # holds at least 3 of the 6 records
    lines = worker.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    middle = json.loads(lines[1])["id"]
    worker.write_bytes(b"".join(lines[:1] + lines[2:]))

    report = verify_logs([caller, *workers], key=KEY)
    assert not report.ok
    chain = report.chains[str(worker)]
    assert not chain.ok and chain.first_bad == 2 and "removed" in chain.reason
    assert [(m.batch, m.id, m.log, m.record) for m in report.missing] == [
        (tree_logs.batch["id"], middle, str(caller), 1)
    ]


def test_a_record_removed_from_the_end_is_found_by_completeness(tree_logs, tmp_path, monkeypatch):
    caller, workers = copy_logs(tree_logs, tmp_path)
    worker = workers[0]
    lines = worker.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])["id"]
    worker.write_bytes(b"".join(lines[:-1]))

    assert verify_chain(worker, key=KEY).ok  # a chain alone cannot tell
    report = verify_logs([caller, *workers], key=KEY)
    assert report.intact and not report.complete and not report.ok
    assert [(m.batch, m.id) for m in report.missing] == [(tree_logs.batch["id"], last)]
    assert report.incomplete() == [
        (str(caller), 1, f"batch {tree_logs.batch['id']} lists 1 file record(s) that none of the logs holds: {last}")
    ]

    monkeypatch.setenv("AUDIT_KEY", KEY)
    result = cli("audit", "verify", str(caller), *map(str, workers), "--key-env", "AUDIT_KEY")
    assert result.returncode == 6
    assert result.stderr.splitlines() == [
        f"remote-store-transfer: error: audit verify {caller}: record 1: batch {tree_logs.batch['id']} "
        f"lists 1 file record(s) that none of the logs holds: {last}"
    ]
    assert "batches: complete" not in result.stdout


def test_a_missing_worker_log_names_its_ids(tree_logs, tmp_path, monkeypatch, capsys):
    caller, workers = copy_logs(tree_logs, tmp_path)
    lost = workers[-1]
    lost_ids = [record["id"] for record in records(lost)]
    given = [caller, *workers[:-1]]

    report = verify_logs(given, key=KEY)
    assert report.intact and not report.complete
    assert [m.id for m in report.missing] == [i for i in tree_logs.batch["files"] if i in lost_ids]
    assert {m.batch for m in report.missing} == {tree_logs.batch["id"]}
    assert str(report).startswith("FAILED: ") and f"{len(lost_ids)} missing" in str(report)

    monkeypatch.setenv("AUDIT_KEY", KEY)
    assert main(["verify", *map(str, given), "--key-env", "AUDIT_KEY"]) == 6
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"{path}: intact, {len(records(path))} records" for path in given]
    assert out.err.splitlines() == [
        f"python -m remote_store_transfer.audit: error: verify {caller}: record 1: batch {tree_logs.batch['id']} "
        f"lists {len(lost_ids)} file record(s) that none of the logs holds: {', '.join(m.id for m in report.missing)}"
    ]
    assert main(["verify", str(caller), *map(str, workers), "--key-env", "AUDIT_KEY"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"batches: complete, 1 batch records list {FILES} file records, all present"
    )


def test_a_forged_file_record_is_detected(tree_logs, tmp_path):
    caller, workers = copy_logs(tree_logs, tmp_path)
    worker = workers[0]
    lines = worker.read_bytes().splitlines(keepends=True)
    number = len(lines)  # the last one: no later record's prev gives it away
    body = lines[-1].rstrip(b"\n")
    forged = body[: body.rindex(b',"hash":')] + b"}"
    forged = forged.replace(b'"outcome":"success"', b'"outcome":"failure"')
    assert b'"outcome":"failure"' in forged
    digest = hashlib.sha256(forged).hexdigest()  # re-hashed, without the key
    lines[-1] = forged[:-1] + b',"hash":"' + digest.encode() + b'"}\n'
    worker.write_bytes(b"".join(lines))

    report = verify_logs([caller, *workers], key=KEY)
    assert not report.ok and report.complete  # the id is still there: the record itself is forged
    chain = report.chains[str(worker)]
    assert (chain.ok, chain.first_bad) == (False, number) and "key" in chain.reason


# ------------------------------------------------------------------------------------ the library, directly


def test_verify_logs_arguments(tmp_path):
    log = tmp_path / "a.jsonl"
    FileSink(log).append({"id": "a"})
    assert list(verify_logs(str(log)).chains) == [str(log)]  # one path, not its characters
    with pytest.raises(ValueError, match="no audit log"):
        verify_logs([])
    with pytest.raises(ValueError, match="not among the logs"):
        verify_logs([log], anchors={tmp_path / "b.jsonl": f"1:{'0' * 64}"})
    anchored = verify_logs([log], anchors={log: f"2:{'0' * 64}"})
    assert not anchored.ok and "removed from the end" in anchored.chains[str(log)].reason
    with pytest.raises(FileNotFoundError) as info:
        verify_logs([log, tmp_path / "nope.jsonl"])
    assert info.value.filename == str(tmp_path / "nope.jsonl")


def test_unrecorded_ids_are_reported_not_failed(tmp_path):
    log = tmp_path / "a.jsonl"
    sink = FileSink(log)
    sink.append({"id": "f1"})
    sink.append({"kind": "batch", "id": "B", "files": ["f1"], "unrecorded": ["f2"]})
    report = verify_logs([log])
    assert report.ok and report.listed == 1
    assert [(m.batch, m.id, m.record) for m in report.unrecorded] == [("B", "f2", 2)]
    assert report.as_dict()["unrecorded"] == [{"batch": "B", "file": str(log), "record": 2, "id": "f2"}]


def test_verify_store_checks_the_batches_across_chains(tmp_path):
    store = Store(backend=LocalBackend(root=str(tmp_path)))
    worker = StoreSink(store, "audit/{host}/{pid}")  # a worker's chain
    for name in ("a", "b", "c"):
        worker.append({"id": name})
    StoreSink(store, "audit/{host}/{pid}").append({"kind": "batch", "id": "B", "files": ["a", "b", "c"]})
    result = verify_store(store, "audit")
    assert result.ok and result.records == 4, result

    store.delete(f"{worker.prefix}/{worker.chain}/{3:012d}.json")  # the end of the worker's chain
    result = verify_store(store, "audit")
    assert not result.ok and result.first_bad == 1
    assert "batch B lists 1 file record(s)" in result.reason and result.reason.endswith(": c")
