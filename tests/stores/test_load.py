"""Load: 16 threads x 200 calls of upload, download and transfer over memory, local and S3 stores at once.

Each call picks its function, its source file and its stores at random (one in
ten involves the S3 store on the session's moto server); one in twenty must
fail (a missing source, or an existing destination without ``overwrite``).

With the built-in progress plugin (``on_progress``) and a counting plugin:
every byte accounted for, every call exactly one ``pre_transfer`` and one
``post_transfer``, every exception reaching both its caller and
``post_transfer``, and no file descriptor left open afterwards.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import threading
from collections import Counter
from pathlib import Path

from remote_store import AlreadyExists, NotFound, Store
from remote_store.backends import LocalBackend, MemoryBackend

from remote_store_transfer import TransferManager, hookimpl

THREADS = 16
CALLS = 200
S3_EVERY = 10
"""One call in ten involves the S3 store: a moto server costs milliseconds per request, memory and local do not."""
SOURCES = 8


class Counting:
    """Counts hooks per call (keyed by context id), thread-safely; remembers each thread's current context."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pre: Counter[str] = Counter()
        self.post: Counter[str] = Counter()
        self.chunk_bytes: Counter[str] = Counter()
        self.errors: dict[str, BaseException | None] = {}
        self.current = threading.local()

    @hookimpl
    def pre_transfer(self, context) -> None:
        self.current.context = context
        with self.lock:
            self.pre[context.id] += 1

    @hookimpl
    def on_chunk(self, context, nbytes: int) -> None:
        with self.lock:
            self.chunk_bytes[context.id] += nbytes

    @hookimpl
    def post_transfer(self, context, error: BaseException | None) -> None:
        with self.lock:
            self.post[context.id] += 1
            self.errors[context.id] = error


def test_sixteen_threads_mixing_all_three_functions(moto_server, tmp_path: Path) -> None:
    # The S3 client's process-wide event-loop thread (and its fds) lives as long as the process: start it first.
    with moto_server.store("load") as warm_up:
        warm_up.exists("nothing")
    gc.collect()
    fds_before = _open_fds()

    local_root = tmp_path / "local-store"
    local_root.mkdir()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    stores: dict[str, Store] = {
        "memory": Store(backend=MemoryBackend()),
        "local": Store(backend=LocalBackend(root=str(local_root))),
        "s3": moto_server.store("load"),
    }
    contents = [os.urandom(random.Random(n).randrange(0, 100_000)) for n in range(SOURCES)]
    local_sources = []
    for n, content in enumerate(contents):
        path = tmp_path / f"source-{n}.bin"
        path.write_bytes(content)
        local_sources.append(path)
        for store in stores.values():
            store.write(f"sources/{n}.bin", content)

    counting = Counting()
    manager = TransferManager([counting])
    results: list[list[tuple]] = [[] for _ in range(THREADS)]
    crashed: list[BaseException] = []

    def worker(t: int) -> None:
        rng = random.Random(1000 + t)
        for i in range(CALLS):
            operation = rng.choice(("upload", "download", "transfer"))
            n = rng.randrange(SOURCES)
            a, b = (stores[rng.choice(("memory", "local"))] for _ in "ab")
            if i % S3_EVERY == t % S3_EVERY:  # this call involves S3: as its source, its destination or both
                a, b = rng.choice(((stores["s3"], b), (a, stores["s3"]), (stores["s3"], stores["s3"])))
            doomed = i % 20 == 7  # a call that must fail: missing source, or an existing destination
            target = f"out/t{t}/{i}.bin"
            local_target = downloads / f"t{t}-{i}.bin"
            progress: list[int] = []
            raised: BaseException | None = None
            try:
                if operation == "upload":
                    path = f"sources/{n}.bin" if doomed else target
                    manager.upload(b, local_sources[n], path, on_progress=progress.append)
                elif operation == "download":
                    source = "sources/missing.bin" if doomed else f"sources/{n}.bin"
                    manager.download(a, source, local_target, on_progress=progress.append)
                else:
                    source = "sources/missing.bin" if doomed else f"sources/{n}.bin"
                    manager.transfer(a, source, b, target, on_progress=progress.append)
            except Exception as exc:
                raised = exc
            except BaseException as exc:  # pragma: no cover - would end the test below
                crashed.append(exc)
                raise
            where = local_target if operation == "download" else (b, target)
            results[t].append((operation, n, where, doomed, raised, sum(progress), counting.current.context))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert crashed == []
    calls = [call for per_thread in results for call in per_thread]
    assert len(calls) == THREADS * CALLS
    ids = [context.id for *_, context in calls]
    assert len(set(ids)) == len(calls)  # each call had its own context, seen by this thread's pre_transfer
    assert counting.pre == Counter(dict.fromkeys(ids, 1))
    assert counting.post == Counter(dict.fromkeys(ids, 1))

    moved = 0
    for operation, n, where, doomed, raised, progress, context in calls:
        expected = len(contents[n])
        assert counting.errors[context.id] is raised  # no exception lost, none invented
        assert progress == counting.chunk_bytes[context.id] == context.bytes_transferred
        moved += progress
        if doomed:
            assert isinstance(raised, AlreadyExists if operation == "upload" else NotFound), raised
            # A missing source fails before any byte moves; a store may read an upload before refusing it.
            assert progress == 0 or operation == "upload"
            continue
        assert raised is None
        assert progress == expected
        landed = where.read_bytes() if operation == "download" else where[0].read_bytes(where[1])
        assert hashlib.sha256(landed).digest() == hashlib.sha256(contents[n]).digest()
    assert moved == sum(counting.chunk_bytes.values())

    for store in stores.values():
        store.close()
    gc.collect()
    fds_after = _open_fds()
    assert [fd for fd in fds_after.values() if fd.startswith(str(tmp_path))] == []  # no file left open
    leaked = sorted(set(fds_after.values()) - set(fds_before.values()) - {"socket"})
    assert leaked == []
    # Sockets are pooled keep-alive connections of the S3 client (and the moto server's own), not ours.
    assert sum(t != "socket" for t in fds_after.values()) <= sum(t != "socket" for t in fds_before.values())


def _open_fds() -> dict[int, str]:
    """What each open fd of this process points at (``"socket"`` for any socket), from /proc/self/fd."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # the fd listdir itself used
            continue
        out[int(name)] = "socket" if target.startswith("socket:") else target
    return out
