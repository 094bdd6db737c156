"""Helpers shared by the tree tests (``test_tree_*.py``): build trees, read them back, plugins that watch them.

Only the public API is used: ``Store.write`` / ``read`` / ``list_files`` /
``get_file_info`` for stores, plain files for local folders.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from remote_store import NotFound, RetryPolicy, Store
from remote_store.backends import LocalBackend, MemoryBackend, S3Backend, SFTPBackend
from storekit import FaultyStream

from remote_store_transfer import FileOutcome, hookimpl

# A small tree with the names a user's folder holds: spaces, unicode, "#", "%", 0-byte files, nesting.
TREE: dict[str, bytes] = {
    "a.txt": b"alpha\n",
    "empty.bin": b"",
    "with space.txt": b"a name with a space\n",
    "caf\u00e9 \u00fcber \u65e5\u672c.txt": "unicode name \u2713\n".encode(),
    "hash#tag.txt": b"hash in the name\n",
    "50%off.txt": b"percent in the name\n",
    "sub/b.txt": b"bravo\n" * 100,
    "sub/empty.txt": b"",
    "sub/deeper/c.bin": bytes(range(256)) * 40,
    "sub/deeper/still/d d.txt": b"delta with space\n",
}


# region: building and reading trees


def write_local(root: str | os.PathLike[str], files: Mapping[str, bytes]) -> Path:
    """Write *files* (relative "/"-path -> bytes) under the local folder *root*; return *root*."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = base.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return base


def read_local(root: str | os.PathLike[str], *, hidden: bool = True) -> dict[str, bytes]:
    """Every regular file under *root* (hidden ones included unless *hidden* is false): "/"-path -> bytes."""
    base = Path(root)
    found: dict[str, bytes] = {}
    if not base.exists():
        return found
    for folder, _dirs, names in os.walk(base):
        for name in names:
            path = Path(folder) / name
            rel = path.relative_to(base).as_posix()
            if not hidden and any(part.startswith(".") for part in rel.split("/")):
                continue
            if path.is_file() and not path.is_symlink():
                found[rel] = path.read_bytes()
    return found


def all_names(root: str | os.PathLike[str]) -> list[str]:
    """Every entry under *root* (files, folders, links, hidden ones too), as sorted "/"-paths."""
    base = Path(root)
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*"))


def write_store(store: Store, prefix: str, files: Mapping[str, bytes], **kwargs: Any) -> None:
    """Write *files* under *prefix* of *store* (``write`` with ``overwrite=True`` and *kwargs*)."""
    for rel, data in files.items():
        store.write(join(prefix, rel), data, overwrite=True, **kwargs)


def read_store(store: Store, prefix: str = "") -> dict[str, bytes]:
    """Every file under *prefix* of *store*: relative "/"-path -> bytes (empty when the prefix is absent)."""
    base = prefix.strip("/")
    cut = len(base) + 1 if base else 0
    try:
        infos = list(store.list_files(base, recursive=True))
    except NotFound:
        return {}
    return {str(info.path)[cut:]: store.read_bytes(str(info.path)) for info in infos}


def join(prefix: str, rel: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


def set_mtime(root: str | os.PathLike[str], rel: str, mtime: float) -> None:
    """Set the modification (and access) time of the local file *root*/*rel*."""
    os.utime(Path(root).joinpath(*rel.split("/")), (mtime, mtime))


def mtime_of(root: str | os.PathLike[str], rel: str) -> float:
    return Path(root).joinpath(*rel.split("/")).stat().st_mtime


# endregion

# region: stores for the tree tests


class StoreMaker:
    """``stores(kind, role=0)``: a store of *kind* for one tree test.

    Memory, local and S3 stores come from the ``make_store`` fixture. An SFTP
    store gets its own connection (never the session's): a short
    ``io_timeout`` and no connect retry, so that a tree that misuses the
    connection (it is not thread-safe) fails its test in seconds and never
    takes the session's SFTP stores, which other tests share, down with it.
    """

    def __init__(self, make_store: Callable[..., Store], request: Any) -> None:
        self.make_store = make_store
        self.request = request
        self.owned: list[Store] = []

    def __call__(self, kind: str, role: int = 0) -> Store:
        if kind != "sftp":
            return self.make_store(kind, role)
        sshd = self.request.getfixturevalue("ssh_server")
        backend = sshd.backend(io_timeout=5.0, retry=RetryPolicy(max_attempts=1))
        root = Store(backend=backend)
        self.owned.append(root)
        return root.child(f"t-{uuid.uuid4().hex[:12]}")

    def close(self) -> None:
        for store in self.owned:
            store.close()


# endregion

# region: plugins and callbacks


class BatchRecorder:
    """A plugin that records the batch hooks and every per-file hook, thread-safely.

    ``batches``: the batch of each ``pre_batch``; ``ended``: ``(batch, result)``
    of each ``post_batch``; ``plans``: ``batch.plan`` as ``pre_batch`` saw it;
    ``pre`` / ``post``: the per-file contexts (and errors).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[Any] = []
        self.ended: list[tuple[Any, Any]] = []
        self.pre: list[Any] = []
        self.post: list[tuple[Any, BaseException | None]] = []
        self.plans: list[Any] = []

    @hookimpl
    def pre_batch(self, batch: Any) -> None:
        self.batches.append(batch)
        self.plans.append(batch.plan)

    @hookimpl
    def post_batch(self, batch: Any, result: Any) -> None:
        self.ended.append((batch, result))

    @hookimpl
    def pre_transfer(self, context: Any) -> None:
        with self.lock:
            self.pre.append(context)

    @hookimpl
    def post_transfer(self, context: Any, error: BaseException | None) -> None:
        with self.lock:
            self.post.append((context, error))

    def pre_paths(self) -> list[str]:
        """The destination path of every ``pre_transfer`` context."""
        return [str(c.destination.path) for c in self.pre]


class Deny:
    """A plugin whose ``pre_transfer`` raises ``error()`` for the destinations that end in one of *suffixes*."""

    def __init__(self, suffixes: Iterable[str], error: Any) -> None:
        self.suffixes = tuple(suffixes)
        self.error = error
        self.calls = 0

    @hookimpl
    def pre_transfer(self, context: Any) -> None:
        if str(context.destination.path).endswith(self.suffixes):
            self.calls += 1
            raise self.error()


class Outcomes:
    """An ``on_file`` callback that keeps every outcome (the runner calls it from one thread)."""

    def __init__(self) -> None:
        self.all: list[FileOutcome] = []
        self.threads: set[int] = set()

    def __call__(self, outcome: FileOutcome) -> None:
        self.threads.add(threading.get_ident())
        self.all.append(outcome)

    def by_path(self) -> dict[str, FileOutcome]:
        return {o.path: o for o in self.all}


# endregion

# region: stores that fail on demand


class Flaky:
    """Mixin for a real Backend: ``read`` / ``write`` of a path that ends in a key of :attr:`plan` raise first.

    ``plan[suffix] = [error factory, ...]``: each call of ``read`` (for a
    source) or ``write`` / ``write_atomic`` (for a destination) of a matching
    path pops the next factory and raises what it makes, before the real
    backend is touched; when the list is empty the real call runs.
    :attr:`calls` counts the calls per suffix.

    :meth:`break_reads` makes the next *times* streams ``read`` returns for a
    path raise mid-way (after *after* bytes, as a dropped connection does),
    or end early without an error (*silent*, as an SFTP stream can).
    """

    def _flaky_init(self) -> None:
        if "_flaky_plan" not in self.__dict__:
            self.__dict__["_flaky_plan"] = {}
            self.__dict__["_flaky_calls"] = {}
            self.__dict__["_flaky_lock"] = threading.Lock()
            self.__dict__["_flaky_ops"] = {"read", "write"}

    @property
    def plan(self) -> dict[str, list[Any]]:
        self._flaky_init()
        return self.__dict__["_flaky_plan"]

    @property
    def calls(self) -> dict[str, int]:
        self._flaky_init()
        return self.__dict__["_flaky_calls"]

    def fail_on(self, suffix: str, *factories: Any, ops: Iterable[str] = ("read", "write")) -> None:
        self._flaky_init()
        self.plan[suffix] = list(factories)
        self.__dict__["_flaky_ops"] = set(ops)

    def _maybe_fail(self, op: str, path: str) -> None:
        self._flaky_init()
        if op not in self.__dict__["_flaky_ops"]:
            return
        with self.__dict__["_flaky_lock"]:
            for suffix, factories in self.plan.items():
                if str(path).endswith(suffix):
                    self.calls[suffix] = self.calls.get(suffix, 0) + 1
                    if factories:
                        raise factories.pop(0)()

    def break_reads(self, suffix: str, times: int, after: int, *, silent: bool = False) -> None:
        self._flaky_init()
        self.__dict__.setdefault("_flaky_breaks", {})[suffix] = [times, after, silent]

    def read(self, path: str) -> Any:
        self._maybe_fail("read", path)
        stream = super().read(path)  # type: ignore[misc]
        with self.__dict__["_flaky_lock"]:
            for suffix, plan in self.__dict__.get("_flaky_breaks", {}).items():
                if str(path).endswith(suffix) and plan[0] > 0:
                    plan[0] -= 1
                    _left, after, silent = plan
                    if silent:
                        try:
                            return io.BytesIO(stream.read(after))
                        finally:
                            stream.close()
                    return FaultyStream(stream, fail_after=after)
        return stream

    def write(self, path: str, content: Any, **kwargs: Any) -> Any:
        self._maybe_fail("write", path)
        return super().write(path, content, **kwargs)  # type: ignore[misc]

    def write_atomic(self, path: str, content: Any, **kwargs: Any) -> Any:
        self._maybe_fail("write", path)
        return super().write_atomic(path, content, **kwargs)  # type: ignore[misc]


class FlakyMemoryBackend(Flaky, MemoryBackend):
    pass


class FlakyLocalBackend(Flaky, LocalBackend):
    pass


class FlakyS3Backend(Flaky, S3Backend):
    pass


class FlakySFTPBackend(Flaky, SFTPBackend):
    pass


# endregion
