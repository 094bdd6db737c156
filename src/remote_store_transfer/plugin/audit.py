"""The built-in ``audit`` plugin: a tamper-evident, hash-chained JSON Lines record of every transfer.

A tree call (``upload_tree``...) writes one record per file as usual, plus
one batch record (``"kind": "batch"``) when the tree ends, which lists the
ids of the file records written for it.

Enable it with ``enable_plugin("audit", path="/var/log/transfers.jsonl")`` or
``[plugins.audit]`` in the config file; see ``docs/plugins/audit.md`` for
the record fields, the sinks and what happens when a record cannot be written.

Record format
    One JSON object per line (ASCII, no spaces), keys in this order:
    ``seq`` (1, 2, 3... in the chain), ``prev`` (the ``hash`` of the record
    before, or 64 zeros for the first), ``v`` (format version, 1), the
    transfer's fields, and last ``hash``: the hex SHA-256 (HMAC-SHA256 when a
    key is configured) of the line's exact bytes without the
    ``,"hash":"..."`` member, i.e. of ``line[:line.rindex(',"hash":')] + "}"``.

Verification
    :func:`verify_chain` (and ``python -m remote_store_transfer.audit verify
    FILE``) recomputes every hash and follows ``seq`` and ``prev``: it
    reports the first record that was altered, removed, inserted, reordered
    or truncated. Removing records from the *end* of a log leaves a shorter
    valid chain; pass an ``anchor`` (``"seq:hash"`` of a record noted
    elsewhere, see :func:`chain_head`) to detect that. Without a key, whoever
    can write the file can also rewrite it with recomputed hashes; configure
    a key (kept out of the file and of the writers' reach) to rule that out.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import hmac
import json
import logging
import math
import os
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from remote_store import Secret

from remote_store_transfer.errors import AuditError
from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.plugin._redact import Redactor
from remote_store_transfer.plugin.integrity import digest_of
from remote_store_transfer.plugin.policy import store_location

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from remote_store import Store

    from remote_store_transfer.context import Endpoint, TransferContext
    from remote_store_transfer.tree.batch import Batch, TreeResult

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "NAME",
    "AuditPlugin",
    "AuditSink",
    "FileSink",
    "StoreSink",
    "VerifyResult",
    "chain_head",
    "verify_chain",
    "verify_store",
]

NAME = "audit"
GENESIS = "0" * 64
"""The ``prev`` of the first record of a chain."""
FORMAT_VERSION = 1

log = logging.getLogger("remote_store_transfer")

_HASH_SUFFIX = re.compile(rb',"hash":"([0-9a-f]{64})"\}$')
_Key = bytes | str | Secret


def _key_bytes(key: _Key | None) -> bytes | None:
    if key is None:
        return None
    if isinstance(key, Secret):
        key = key.reveal()
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or not key:
        raise ValueError("the audit key must be a non-empty str, bytes or remote_store.Secret")
    return key


def _digest(body: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _seal(record: dict[str, Any], seq: int, prev: str, key: bytes | None) -> tuple[bytes, str]:
    """The record's line (without newline) and its hash."""
    body = json.dumps(
        {"seq": seq, "prev": prev, "v": FORMAT_VERSION, **record}, ensure_ascii=True, separators=(",", ":")
    ).encode("ascii")
    digest = _digest(body, key)
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}', digest


def _chain_link(line: bytes) -> tuple[int, str]:
    """``(seq, hash)`` of a record line, for appending after it.

    Raises:
        ValueError: The line is not a well-formed record.
    """
    match = _HASH_SUFFIX.search(line)
    if match is None:
        raise ValueError("the line has no hash")
    seq = json.loads(line).get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("the line has no seq")
    return seq, match.group(1).decode("ascii")


# --------------------------------------------------------------------------------------------- sinks


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

    Args:
        path: The log file; created (mode 0o640) with its directory if missing.
        key: HMAC key for the record hashes (``None``: plain SHA-256).
    """

    def __init__(self, path: str | os.PathLike[str], *, key: _Key | None = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._key = _key_bytes(key)

    def describe(self) -> str:
        return f"file {self.path}"

    def __repr__(self) -> str:
        return f"FileSink({self.path!r})"

    def append(self, record: dict[str, Any]) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o640)
        try:
            _lock(fd)
            try:
                size = os.fstat(fd).st_size
                try:
                    last = _read_last_line(fd, size)
                    seq, prev = (0, GENESIS) if last is None else _chain_link(last)
                except ValueError as exc:
                    raise AuditError(
                        f"refusing to append to the audit log {self.path}: its last record is damaged ({exc}); "
                        f"run 'python -m remote_store_transfer.audit verify {self.path}' and move the file aside"
                    ) from exc
                line, _ = _seal(record, seq + 1, prev, self._key)
                data = memoryview(line + b"\n")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
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

    Args:
        store: The store to write to (for example ``Store.child("audit")`` of an
            S3 bucket with object lock / versioning).
        prefix: Folder under which chains are written.
        key: HMAC key for the record hashes (``None``: plain SHA-256).
    """

    def __init__(self, store: Store, prefix: str = "audit", *, key: _Key | None = None) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self._key = _key_bytes(key)
        self._lock = threading.Lock()
        self._new_chain()

    def _new_chain(self) -> None:
        host = re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname()) or "host"
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._pid = os.getpid()
        self.chain = f"{started}-{host}-{self._pid}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._prev = GENESIS

    def describe(self) -> str:
        return f"{self.store!r}:{self.prefix}/{self.chain}/"

    def __repr__(self) -> str:
        return f"StoreSink({self.store!r}, {self.prefix!r})"

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's chain is not ours to extend
                self._new_chain()
            seq = self._seq + 1
            line, digest = _seal(record, seq, self._prev, self._key)
            key = f"{self.prefix}/{self.chain}/{seq:012d}.json" if self.prefix else f"{self.chain}/{seq:012d}.json"
            self.store.write(key, line + b"\n", overwrite=False)
            self._seq, self._prev = seq, digest


# --------------------------------------------------------------------------------------------- plugin


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _plain(value: object) -> object:
    """*value* as JSON data: tuples and sets become lists, anything else that JSON cannot hold its ``repr``."""
    if value is None or isinstance(value, str | bool | int | Secret):  # Secret: masked by the redactor
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return repr(value)


def _error(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__qualname__, "message": str(error)}


class _BatchFiles:
    """The ids of the file records of one tree call, for its batch record (one per plugin instance)."""

    __slots__ = ("lock", "unrecorded", "written")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: list[str] = []  # in the order the records were appended to the sink
        self.unrecorded: list[str] = []  # records that could not be written (on_failure="log")


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 -- no login name (containers without a passwd entry)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


class AuditPlugin:
    """Write one hash-chained audit record per transfer (success and failure alike).

    A tree call (``upload_tree``, ``download_tree``, ``transfer_tree``) also
    gets one batch record (``"kind": "batch"``), written in ``post_batch``
    after its files' records: see :meth:`batch_record`.

    Exactly one of *path*, *store* or *sink* names where records go.

    Args:
        path: Local JSON Lines file (a :class:`FileSink`).
        store: A ``Store`` to write one object per record to (a :class:`StoreSink`).
        prefix: Folder in *store* for the records.
        sink: Any object with ``append(record)`` and ``describe()``.
        actor: Who acts: the user name to record (default: the login name
            of the process), or a callable ``actor(context) -> str`` (for a
            service acting for many users, e.g. reading a context variable).
            For a batch record the callable gets the tree's
            :class:`~remote_store_transfer.tree.batch.Batch` as ``context``
            (it has ``id``, ``operation``, ``source``, ``destination`` and ``state`` too).
        host: Host name to record (default: ``socket.gethostname()``).
        key: HMAC key for the record hashes (str, bytes or ``Secret``). With a
            key, only its holder can make records the verifier accepts.
        redact: Secret values (``Secret`` or str) to mask wherever they
            appear in a record; credential-shaped values are masked anyway.
        on_failure: What a failed record write does. ``"raise"`` (default):
            raise :class:`~remote_store_transfer.AuditError` (on a successful
            transfer the call then fails; on a failed one the original error
            reaches the caller with a note). ``"log"``: only log it at ERROR.
            Either way the record and the cause are logged at ERROR on the
            ``remote_store_transfer`` logger.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        store: Store | None = None,
        prefix: str = "audit",
        sink: AuditSink | None = None,
        actor: str | Callable[[TransferContext], str] | None = None,
        host: str | None = None,
        key: _Key | None = None,
        redact: Iterable[Secret | str] = (),
        on_failure: Literal["raise", "log"] = "raise",
    ) -> None:
        given = [name for name, value in (("path", path), ("store", store), ("sink", sink)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, store or sink (got {given or 'none'})")
        if on_failure not in ("raise", "log"):
            raise ValueError(f"on_failure must be 'raise' or 'log', got {on_failure!r}")
        if actor is not None and not (isinstance(actor, str) or callable(actor)):
            raise TypeError(f"actor must be a string or a callable, got {actor!r}")
        if host is not None and not isinstance(host, str):
            raise TypeError(f"host must be a string, got {host!r}")
        if path is not None:
            sink = FileSink(path, key=key)
        elif store is not None:
            sink = StoreSink(store, prefix, key=key)
        assert sink is not None
        self.sink: AuditSink = sink
        self.actor = actor if actor is not None else _default_user()
        self.host = host if host is not None else socket.gethostname()
        self.on_failure = on_failure
        self._redact = Redactor([*redact, *([key] if isinstance(key, Secret | str) else [])])
        self._lock = threading.Lock()
        self._batch_key = f"audit.files.{id(self):x}"  # in Batch.state; per instance (two audit sinks)

    def __repr__(self) -> str:
        return f"AuditPlugin({self.sink!r})"

    def _endpoint(self, end: Endpoint) -> dict[str, Any]:
        if end.store is None:
            return {"local": os.path.abspath(end.path)}
        location: str | None = None
        with contextlib.suppress(Exception):
            location = store_location(end.store, end.path)
        return {"store": repr(end.store), "path": end.path, "location": location}

    def record(self, context: TransferContext, error: BaseException | None) -> dict[str, Any]:
        """The (redacted) audit record of *context* ending with *error*, without ``seq``/``prev``/``hash``."""
        user = self.actor(context) if callable(self.actor) else self.actor
        digest = digest_of(context)
        write = context.write_result
        record: dict[str, Any] = {
            "id": context.id,
            "operation": context.operation,
            "start": _utc(context.started),
            "end": _utc(time.time()),
            "duration_s": round(context.elapsed(), 6),
            "actor": {"user": str(user), "host": self.host, "pid": os.getpid()},
            "source": self._endpoint(context.source),
            "destination": self._endpoint(context.destination),
            "bytes": context.bytes_transferred,
            "size": context.size,
            "overwrite": context.overwrite,
            "atomic": context.atomic,
            "digest": None
            if digest is None
            else {"algorithm": digest.algorithm, "value": digest.hexdigest, "verified": digest.verified},
            "version_id": write.version_id if write is not None else None,
            "outcome": "success" if error is None else "failure",
            "error": None if error is None else _error(error),
        }
        redacted = self._redact.value(record)
        assert isinstance(redacted, dict)
        return redacted

    def _batch_files(self, batch: Batch) -> _BatchFiles:
        with self._lock:
            files = batch.state.get(self._batch_key)
            if files is None:
                files = batch.state[self._batch_key] = _BatchFiles()
            assert isinstance(files, _BatchFiles)
            return files

    def _append(self, context: TransferContext, record: dict[str, Any]) -> None:
        if context.batch is None:
            self.sink.append(record)
            return
        files = self._batch_files(context.batch)
        # post_transfer runs in many worker threads at once. The sinks serialize appends anyway
        # (flock, or StoreSink's lock), so holding this lock across the append costs nothing and
        # makes the batch record list its files in the order they are in the log.
        with files.lock:
            try:
                self.sink.append(record)
            except Exception:
                files.unrecorded.append(context.id)
                raise
            files.written.append(context.id)

    @hookimpl(trylast=True)
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        record = self.record(context, error)
        try:
            self._append(context, record)
        except Exception as exc:
            outcome = record["outcome"]
            cause = self._redact(f"{type(exc).__name__}: {exc}")
            log.error(
                "audit record of transfer %s (%s) could not be written to %s: %s; the record: %s",
                context.id,
                outcome,
                self.sink.describe(),
                cause,
                json.dumps(record, separators=(",", ":")),
                extra={"event": "audit.write_failed", "transfer_id": context.id, "outcome": outcome},
            )
            if self.on_failure == "raise":
                raise AuditError(
                    f"transfer {context.id} ({context.operation}, {outcome}) could not be recorded in the audit "
                    f"log {self.sink.describe()}: {cause}",
                    record=record,
                    outcome=outcome,
                ) from exc

    def batch_record(self, batch: Batch, result: TreeResult) -> dict[str, Any]:
        """The (redacted) batch record of the tree call *batch* that ended with *result*.

        Without ``seq``/``prev``/``hash``. ``files`` lists the ``id`` of every
        file record this plugin wrote for the tree (one per attempt of each
        file that began), in the order they were written; ``unrecorded`` the
        ids of those it could not write (``on_failure="log"``). When the files
        ran in worker processes (``batch.remote``), their records were written
        there, by each worker's own audit plugin: ``files`` then lists the id
        of every file try the workers reported (``batch.transfer_ids``), and
        ``audit verify`` checks that each of them has its record.
        """
        files = self._batch_files(batch)
        with files.lock:
            written, unrecorded = list(files.written), list(files.unrecorded)
        if batch.remote:
            written = list(batch.transfer_ids)
        outcome = batch.outcome(result)
        actor = cast("Callable[[object], str] | str", self.actor)
        user = actor(batch) if callable(actor) else actor
        record: dict[str, Any] = {
            "kind": "batch",
            "id": batch.id,
            "operation": batch.operation,
            "start": _utc(batch.started),
            "end": _utc(time.time()),
            "duration_s": round(batch.elapsed(), 6),
            "actor": {"user": str(user), "host": self.host, "pid": os.getpid()},
            "source": self._endpoint(batch.source),
            "destination": self._endpoint(batch.destination),
            "options": _plain(batch.options),
            "dry_run": batch.dry_run,
            "remote": batch.remote,
            "listing_complete": batch.listing_complete,
            "planned": {"files": batch.planned_files, "bytes": batch.planned_bytes},
            "counts": {
                "transferred": len(result.transferred),
                "skipped": len(result.skipped),
                "failed": len(result.failed),
                "deleted": len(result.deleted),
            },
            "bytes": result.bytes_transferred,
            "ok": outcome == "success",
            "outcome": outcome,
            "failed": [{"path": path, "error": _error(error)} for path, error in result.failed.items()],
            "deleted": list(result.deleted),
            "files": written,
            "unrecorded": unrecorded,
        }
        redacted = self._redact.value(record)
        assert isinstance(redacted, dict)
        return redacted

    @hookimpl(trylast=True)
    def post_batch(self, batch: Batch, result: TreeResult) -> None:
        try:
            record = self.batch_record(batch, result)
        finally:
            batch.state.pop(self._batch_key, None)
        try:
            self.sink.append(record)
        except Exception as exc:
            outcome = record["outcome"]
            cause = self._redact(f"{type(exc).__name__}: {exc}")
            log.error(
                "audit record of tree %s (%s) could not be written to %s: %s; the record: %s",
                batch.id,
                outcome,
                self.sink.describe(),
                cause,
                json.dumps(record, separators=(",", ":")),
                extra={"event": "audit.write_failed", "batch_id": batch.id, "outcome": outcome},
            )
            if self.on_failure == "raise":
                raise AuditError(
                    f"tree {batch.id} ({batch.operation}, {outcome}) could not be recorded in the audit "
                    f"log {self.sink.describe()}: {cause}",
                    record=record,
                    outcome=outcome,
                ) from exc


# --------------------------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_chain` found.

    Attributes:
        ok: ``True`` when every record is intact and in place.
        records: How many records (lines) the log has.
        first_bad: 1-based line number of the first record found altered,
            inserted, reordered or truncated, or where removed records were;
            ``None`` when *ok*.
        reason: What is wrong there (``"intact"`` when *ok*).
    """

    ok: bool
    records: int
    first_bad: int | None
    reason: str

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.records} records, chain intact"
        return f"FAILED at record {self.first_bad} of {self.records}: {self.reason}"


@dataclass
class _Line:
    number: int
    raw: bytes
    complete: bool  # ended with a newline (always true for lines given as a list)
    seq: int | None = None
    prev: str | None = None
    hash: str | None = None


def _lines(source: str | os.PathLike[str] | bytes | Iterable[str | bytes]) -> Iterator[_Line]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                complete = raw.endswith(b"\n")
                yield _Line(number, raw[:-1] if complete else raw, complete)
        return
    if isinstance(source, bytes):
        parts = source.split(b"\n")
        last = parts.pop()
        for number, raw in enumerate(parts, 1):
            yield _Line(number, raw, True)
        if last:
            yield _Line(len(parts) + 1, last, False)
        return
    for number, item in enumerate(source, 1):
        raw = item.encode() if isinstance(item, str) else bytes(item)
        yield _Line(number, raw.removesuffix(b"\n"), True)


def _peek(line: _Line) -> None:
    """Fill ``seq``/``prev``/``hash`` of *line* as far as they can be read, without checking anything."""
    match = _HASH_SUFFIX.search(line.raw)
    line.hash = match.group(1).decode("ascii") if match else None
    try:
        data = json.loads(line.raw)
    except ValueError:
        return
    if isinstance(data, dict):
        seq, prev = data.get("seq"), data.get("prev")
        line.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        line.prev = prev if isinstance(prev, str) else None


def _parse(line: _Line, key: bytes | None) -> str | None:  # noqa: PLR0911 -- one return per defect
    """Check *line* on its own and fill its ``seq``/``prev``/``hash``; return what is wrong, or ``None``."""
    if not line.complete:
        return "incomplete last record (no newline at the end): truncated"
    if not line.raw.strip():
        return "empty line"
    match = _HASH_SUFFIX.search(line.raw)
    if match is None:
        return "the record has no hash at its end: altered or truncated"
    if not hmac.compare_digest(_digest(line.raw[: match.start()] + b"}", key), match.group(1).decode("ascii")):
        if key is not None:
            return "the record's hash does not match its content and the key: altered (or not made with this key)"
        return "the record's hash does not match its content: altered"
    _peek(line)
    if line.seq is None or line.prev is None:
        return "the record is not valid JSON with a seq and a prev: altered"
    return None


def verify_chain(
    source: str | os.PathLike[str] | bytes | Iterable[str | bytes],
    *,
    key: _Key | None = None,
    anchor: str | None = None,
) -> VerifyResult:
    """Check an audit log's hash chain; report the first record that was tampered with.

    Args:
        source: The log: a file path, its whole content as ``bytes``, or an
            iterable of record lines (``str`` or ``bytes``, with or without
            the newline).
        key: The HMAC key the records were written with, if any.
        anchor: ``"seq:hash"`` of a record noted elsewhere earlier (see
            :func:`chain_head`): the log must still hold that record, so
            records removed from the end are detected.

    Returns:
        A :class:`VerifyResult`; ``ok`` is ``True`` for an intact log
        (an empty log is intact).

    Raises:
        OSError: The file cannot be read.
    """
    key_bytes = _key_bytes(key)
    anchor_seq, anchor_hash = _parse_anchor(anchor) if anchor is not None else (None, None)
    lines = _Counted(_lines(source))
    previous: _Line | None = None
    anchor_seen = False
    for line in lines:
        problem = _parse(line, key_bytes)
        if problem is not None:
            return _fail(lines, line.number, problem)
        expected_seq = 1 if previous is None else (previous.seq or 0) + 1
        expected_prev = GENESIS if previous is None else previous.hash
        if line.seq != expected_seq or line.prev != expected_prev:
            where, problem = _classify(line, previous, expected_seq, lines)
            return _fail(lines, where, problem)
        if anchor_seq is not None and line.seq == anchor_seq:
            if line.hash != anchor_hash:
                return _fail(lines, line.number, f"record seq {anchor_seq} does not match the anchor: altered")
            anchor_seen = True
        previous = line
    if anchor_seq is not None and not anchor_seen:
        return VerifyResult(
            False,
            lines.count,
            lines.count + 1,
            f"the log ends at seq {previous.seq if previous else 0} but the anchor names seq {anchor_seq}: "
            "records were removed from the end",
        )
    return VerifyResult(True, lines.count, None, "intact" if lines.count else "empty log")


def _parse_anchor(anchor: str) -> tuple[int, str]:
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"anchor must be 'seq:hash' (as chain_head() returns), got {anchor!r}")
    return int(seq), digest


class _Counted:
    """An iterator of lines that counts how many it gave."""

    def __init__(self, lines: Iterator[_Line]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> _Line:
        line = next(self._lines)
        self.count += 1
        return line


def _fail(lines: _Counted, first_bad: int, reason: str) -> VerifyResult:
    """A failed result; reads the rest of the log so that ``records`` counts all of it."""
    for _ in lines:
        pass
    return VerifyResult(False, lines.count, first_bad, reason)


def _classify(  # noqa: PLR0911 -- one return per kind of tampering
    line: _Line, previous: _Line | None, expected_seq: int, rest: Iterator[_Line]
) -> tuple[int, str]:
    """Where the chain breaks at *line* (well-formed on its own), and why. May consume *rest*."""
    seq = line.seq or 0
    found = f"expected record seq {expected_seq}, found seq {seq}"
    if seq > expected_seq:
        for later in rest:
            _peek(later)
            if later.seq == expected_seq:
                return line.number, f"{found}: records reordered (seq {expected_seq} is at line {later.number})"
        missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seqs {expected_seq} to {seq - 1}"
        return line.number, f"{found}: record {missing} removed"
    if previous is None:
        if seq == expected_seq:
            return line.number, "the first record does not start a chain (prev is not the genesis hash): altered"
        return line.number, f"{found}: altered"
    if seq < expected_seq and line.hash == previous.hash:
        return line.number, f"record {line.number} is a duplicate of record {previous.number}: inserted"
    following = next(rest, None)
    if following is not None:
        _peek(following)
        if following.prev == previous.hash:  # the chain goes on from previous: line does not belong
            return line.number, (
                f"record {line.number} (seq {seq}) was inserted: "
                f"record {following.number} follows on from record {previous.number}"
            )
    if seq < expected_seq and line.prev == previous.prev:  # two records follow on from the same one
        return previous.number, (
            f"record {previous.number} was inserted: record {line.number} follows on from the same record"
        )
    if seq == expected_seq:
        return previous.number, (
            f"record {previous.number} does not hash to the prev that record {line.number} holds for it: "
            f"record {previous.number} was rewritten (or record {line.number}'s prev was)"
        )
    return line.number, f"{found}: record inserted or reordered"


def chain_head(source: str | os.PathLike[str] | bytes | Iterable[str | bytes]) -> str | None:
    """``"seq:hash"`` of the last record of a log (``None`` if empty): note it elsewhere as an anchor.

    It does not verify the log; :func:`verify_chain` with ``anchor=`` later
    proves that the log still holds that record, unchanged.
    """
    head = None
    for line in _lines(source):
        if line.raw.strip():
            head = line
    if head is None:
        return None
    seq, digest = _chain_link(head.raw)
    return f"{seq}:{digest}"


def verify_store(store: Store, prefix: str = "audit", *, key: _Key | None = None) -> VerifyResult:
    """Verify every chain a :class:`StoreSink` wrote under *prefix* of *store*.

    Returns:
        ``ok`` when every chain is intact; ``records`` counts the records of
        all chains; on failure ``first_bad`` is the record's number in its
        chain and ``reason`` names the chain and the object.
    """
    prefix = prefix.strip("/")
    chains: dict[str, list[str]] = {}
    if not prefix or store.exists(prefix):
        for info in store.list_files(prefix, recursive=True):
            path = str(info.path)
            relative = path[len(prefix) + 1 :] if prefix else path
            chain, _, name = relative.rpartition("/")
            chains.setdefault(chain, []).append(name)
    total = 0
    for chain in sorted(chains):
        names = sorted(chains[chain])
        folder = f"{prefix}/{chain}" if prefix else chain
        result = verify_chain([store.read_bytes(f"{folder}/{name}") for name in names], key=key)
        total += result.records
        if not result.ok:
            assert result.first_bad is not None
            bad = names[min(result.first_bad, len(names)) - 1]
            return VerifyResult(
                False, total, result.first_bad, f"chain {chain}, object {folder}/{bad}: {result.reason}"
            )
    return VerifyResult(True, total, None, "intact" if total else "empty log")
