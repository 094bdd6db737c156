"""Where audit records go: a local JSON Lines file (one chain, any number of writers) or a ``Store``."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from remote_store_transfer.audit.anchors import Anchor, FileAnchor, HeadNotPublishedError, StoreAnchor
from remote_store_transfer.audit.placeholders import expand, host_label, is_template, placeholders_in
from remote_store_transfer.audit.records import GENESIS, Key, checked_link, head_text, key_to_bytes, seal
from remote_store_transfer.errors import AuditError

if TYPE_CHECKING:
    from remote_store import Store

__all__ = ["AuditSink", "FileSink", "StoreSink"]


class AuditSink(Protocol):
    """Where audit records go. :meth:`append` chains and writes one record durably, or raises."""

    def append(self, record: dict[str, Any]) -> None:
        """Give *record* its ``seq``, ``prev`` and ``hash`` and write it durably."""

    def describe(self) -> str:
        """A description of the sink for messages (no credentials)."""


if sys.platform != "win32":
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

else:  # pragma: no cover -- no flock: threads of one process are still serialized
    _win_lock = threading.Lock()

    def _lock(fd: int) -> None:
        _win_lock.acquire()

    def _unlock(fd: int) -> None:
        _win_lock.release()


def _read_last_line(fd: int, size: int) -> bytes | None:
    """The last line of the file open at *fd* (of *size* bytes), without its newline; ``None`` if empty.

    Raises:
        ValueError: The file does not end with a newline (a record was cut short).
    """
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise ValueError("the file does not end with a newline: its last record is incomplete")
    position = size - 1  # read backwards from just before the final newline
    blocks: list[bytes] = []  # the blocks read so far, last first (joined once: a batch record can be long)
    while position > 0:
        step = min(65536, position)
        position -= step
        block = os.pread(fd, step, position)
        newline = block.rfind(b"\n")
        if newline != -1:
            blocks.append(block[newline + 1 :])
            break
        blocks.append(block)
    return b"".join(reversed(blocks))


class FileSink:
    """Append records to a local JSON Lines file: one chain shared by every writer.

    Each record is appended under an exclusive ``flock`` on the file, after
    reading the last record's ``seq`` and ``hash`` under that same lock, then
    flushed and ``fsync``'d before the lock is released: any number of
    threads and processes (on one host, or on a file system with working
    ``flock``) can append to the same file and the chain stays intact.

    If the file's last record is damaged (cut short by a crash, or
    tampered with), appending is refused with an error rather than extending
    a broken chain: verify the file, move it aside, and a new chain starts.

    With ``{host}`` or ``{pid}`` in *path*, each process writes its own file
    (its own chain): the placeholders are expanded in the process that
    writes, at its first record (again in a forked child), e.g.
    ``audit-{host}-{pid}.jsonl``. ``{{`` and ``}}`` stand for a literal brace.
    The sink pickles (the template travels, not an expanded path).

    Args:
        path: The log file; created (mode 0o640) with its directory if missing.
        key: HMAC key for the record hashes (``None``: plain SHA-256).
        anchor: A :class:`FileAnchor` or :class:`StoreAnchor`: after each
            record, still under the lock, the chain head (``seq:hash``, and
            ``:mac`` with a key) is published there; it must hold every
            placeholder *path* holds (one anchor per chain).

    Raises:
        ValueError: *path* holds an unknown placeholder (anything but
            ``{host}`` and ``{pid}``) or a lone brace; *anchor* lacks one of
            *path*'s placeholders.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, key: Key | None = None, anchor: FileAnchor | StoreAnchor | None = None
    ) -> None:
        text = os.fspath(path)
        templated = is_template(text, "path")
        self.template = os.path.abspath(text)
        """The path as configured (absolute), placeholders and all."""
        self._templated = templated
        self._expanded: tuple[int, str] | None = None  # (pid, path) of the last expansion
        self._key = key_to_bytes(key)
        if anchor is not None:
            lacking = placeholders_in(text) - placeholders_in(anchor.template)
            if lacking:
                names = ", ".join(f"{{{name}}}" for name in sorted(lacking))
                raise ValueError(
                    f"the audit anchor {anchor.template!r} must hold {names} like the path {text!r}: "
                    "each chain needs its own anchor"
                )
        self.anchor: Anchor | None = anchor

    @property
    def path(self) -> str:
        """The file this process writes: the template with this process's ``{host}`` and ``{pid}``."""
        if not self._templated:
            return self.template
        pid = os.getpid()
        expanded = self._expanded
        if expanded is None or expanded[0] != pid:
            expanded = self._expanded = (pid, expand(self.template))
        return expanded[1]

    def describe(self) -> str:
        return f"file {self.path}"

    def __repr__(self) -> str:
        return f"FileSink({self.template!r})"

    def append(self, record: dict[str, Any]) -> None:
        path = self.path
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o640)
        head_error: HeadNotPublishedError | None = None
        try:
            _lock(fd)
            try:
                size = os.fstat(fd).st_size
                try:
                    last = _read_last_line(fd, size)
                    seq, prev = (0, GENESIS) if last is None else checked_link(last, self._key)
                except ValueError as exc:
                    raise AuditError(
                        f"refusing to append to the audit log {path}: its last record is damaged ({exc}); "
                        f"run 'python -m remote_store_transfer.audit verify {path}' and move the file aside"
                    ) from exc
                line, digest = seal(record, seq + 1, prev, self._key)
                data = memoryview(line + b"\n")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
                if self.anchor is not None:  # under the lock: heads are published in chain order
                    try:
                        self.anchor.publish(head_text(seq + 1, digest, self._key))
                    except Exception as exc:  # noqa: BLE001 -- raised below, once the record is durable
                        head_error = HeadNotPublishedError(
                            f"the record (seq {seq + 1}) was written to {path}, but its chain head could not be "
                            f"published to the anchor {self.anchor.describe()}: {type(exc).__name__}: {exc}"
                        )
                        head_error.__cause__ = exc
            finally:
                _unlock(fd)
        finally:
            os.close(fd)
        if size == 0 and hasattr(os, "O_DIRECTORY"):  # a new file: make its directory entry durable too
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        if head_error is not None:
            raise head_error


class StoreSink:
    """Write records to a remote-store ``Store``: one object per record.

    Object stores cannot append, and they offer no lock to serialize writers
    across processes. So each sink instance (per process: a forked child
    starts its own) writes its own chain, under
    ``<prefix>/<chain>/<seq:012d>.json``, where ``<chain>`` is
    ``<UTC start time>-<host>-<pid>-<random>``: chains sort by start time, and
    no two writers ever compete for a key (each object is written with
    ``overwrite=False``). Every object holds exactly one record line, so the
    objects of a chain, concatenated in key order, form a file that
    :func:`verify_chain` accepts; :func:`verify_store` checks every chain.

    Trade-off (one object per record rather than batches): one write request
    per transfer (latency and request cost; many small objects), but a
    record is durable as soon as the transfer's ``post_transfer`` returns,
    nothing is lost when the process dies, and a failed write is reported
    on the very transfer it belongs to. Batching would save requests but
    hold records in memory where a crash loses them unseen.

    *prefix* may hold ``{host}`` and ``{pid}`` (e.g. ``"audit/{host}"``: one
    folder per machine), expanded in the process that writes, with its chain.
    The sink pickles (if its store does); an unpickled copy starts a chain of
    its own.

    Args:
        store: The store to write to (for example ``Store.child("audit")`` of an
            S3 bucket with object lock / versioning).
        prefix: Folder under which chains are written.
        key: HMAC key for the record hashes (``None``: plain SHA-256).

    Raises:
        ValueError: *prefix* holds an unknown placeholder (anything but
            ``{host}`` and ``{pid}``) or a lone brace.
    """

    def __init__(self, store: Store, prefix: str = "audit", *, key: Key | None = None) -> None:
        self.store = store
        self.template = prefix.strip("/")
        """The prefix as configured, placeholders and all."""
        self._templated = is_template(self.template, "prefix")
        self._key = key_to_bytes(key)
        self._lock = threading.Lock()
        self._new_chain()

    def _new_chain(self) -> None:
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._pid = os.getpid()
        self.prefix = expand(self.template).strip("/") if self._templated else self.template
        self.chain = f"{started}-{host_label()}-{self._pid}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._prev = GENESIS

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._new_chain()  # never extend the chain of the sink this is a copy of: both would write its keys

    def describe(self) -> str:
        return f"{self.store!r}:{self.prefix}/{self.chain}/"

    def __repr__(self) -> str:
        return f"StoreSink({self.store!r}, {self.template!r})"

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's chain is not ours to extend
                self._new_chain()
            seq = self._seq + 1
            line, digest = seal(record, seq, self._prev, self._key)
            key = f"{self.prefix}/{self.chain}/{seq:012d}.json" if self.prefix else f"{self.chain}/{seq:012d}.json"
            self.store.write(key, line + b"\n", overwrite=False)
            self._seq, self._prev = seq, digest
