"""Many writers, one audit file: threads and processes append concurrently and the chain stays intact."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

from remote_store import Store
from remote_store.backends import MemoryBackend

from remote_store_transfer import TransferManager, enable_plugin
from remote_store_transfer.audit import verify_chain

THREADS, PER_THREAD = 8, 25
PROCESSES, PER_PROCESS = 4, 25


def transfers(
    log: str, source: str, tag: str, count: int, manager: TransferManager | None = None, start: Any = None
) -> None:
    """*count* uploads recorded in *log*; a manager per writer unless given, like separate programs."""
    if manager is None:
        manager = TransferManager()
        enable_plugin("audit", manager=manager, path=log)
    store = Store(backend=MemoryBackend())
    if start is not None:
        start.wait()
    for i in range(count):
        manager.upload(store, source, f"{tag}/{i}")


def test_threads_append_to_one_file(tmp_path):
    log, source = tmp_path / "audit.jsonl", tmp_path / "f"
    source.write_bytes(b"x" * 1000)
    shared = TransferManager()  # half the threads share one plugin instance, half have their own
    enable_plugin("audit", manager=shared, path=log)
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            transfers(str(log), str(source), f"t{n}", PER_THREAD, shared if n % 2 else None, barrier)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    result = verify_chain(log)
    assert result.ok, result
    assert result.records == THREADS * PER_THREAD
    paths = [json.loads(line)["destination"]["path"] for line in log.read_text().splitlines()]
    assert sorted(paths) == sorted(f"t{n}/{i}" for n in range(THREADS) for i in range(PER_THREAD))


def test_processes_append_to_one_file(tmp_path: Path):
    log, source = tmp_path / "audit.jsonl", tmp_path / "f"
    source.write_bytes(b"x" * 1000)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES + 1)  # all writers start appending at once
    processes = [
        context.Process(target=transfers, args=(str(log), str(source), f"p{n}", PER_PROCESS, None, start))
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    transfers(str(log), str(source), "parent", PER_PROCESS, None, start)  # and this process too
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    for process in processes:
        process.close()  # release its sentinel fd now, not at some later garbage collection
    result = verify_chain(log)
    assert result.ok, result
    assert result.records == (PROCESSES + 1) * PER_PROCESS
    pids = [json.loads(line)["actor"]["pid"] for line in log.read_text().splitlines()]
    assert len(set(pids)) == PROCESSES + 1
    assert sum(a != b for a, b in itertools.pairwise(pids)) > PROCESSES  # they did interleave
