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
    elsewhere, see :func:`chain_head`) or the ``head`` the plugin published
    (``anchor_path`` / ``anchor_store``: :class:`FileAnchor`,
    :class:`StoreAnchor`) to detect that. Without a key, whoever
    can write the file can also rewrite it with recomputed hashes; configure
    a key (kept out of the file and of the writers' reach) to rule that out.

Several logs
    A tree whose files run in worker processes has its file records written
    by each worker and its batch record by the caller; with ``{host}`` /
    ``{pid}`` in the ``path`` (or the store ``prefix``) each process writes
    its own chain. :func:`verify_logs` checks every chain of a set of logs,
    then that every id a batch record lists in ``files`` has its file record
    in one of them (**completeness**): a record removed from the end of a
    worker's log, or a whole worker's log lost, is found there.
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
import string
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
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from remote_store import Store

    from remote_store_transfer.context import Endpoint, TransferContext
    from remote_store_transfer.tree.batch import Batch, TreeResult

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "NAME",
    "PLACEHOLDERS",
    "AuditPlugin",
    "AuditSink",
    "FileAnchor",
    "FileSink",
    "HeadNotPublishedError",
    "MissingRecord",
    "StoreAnchor",
    "StoreSink",
    "VerifyReport",
    "VerifyResult",
    "chain_head",
    "verify_chain",
    "verify_logs",
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


def _checked_link(line: bytes, key: bytes | None) -> tuple[int, str]:
    """``(seq, hash)`` of a record line whose hash is checked against its content (and *key*).

    Raises:
        ValueError: The line is not a well-formed record, or its hash does not match.
    """
    match = _HASH_SUFFIX.search(line)
    if match is None:
        raise ValueError("the line has no hash")
    if not hmac.compare_digest(_digest(line[: match.start()] + b"}", key), match.group(1).decode("ascii")):
        with_key = " and the key (or it was not made with this key)" if key is not None else ""
        raise ValueError(f"its hash does not match its content{with_key}: altered")
    return _chain_link(line)


# --------------------------------------------------------------------------------------------- chain head

_HEAD_TAG = b"remote-store-transfer audit head v1\n"


def _head_text(seq: int, digest: str, key: bytes | None) -> str:
    """The chain head an anchor publishes: ``seq:hash``, and ``:mac`` (HMAC-SHA256 of it) with a key."""
    text = f"{seq}:{digest}"
    if key is None:
        return text
    return f"{text}:{hmac.new(key, _HEAD_TAG + text.encode('ascii'), hashlib.sha256).hexdigest()}"


def _parse_head(head: str, key: bytes | None) -> tuple[int, str, str | None]:
    """``(seq, hash, problem)`` of a published head; *problem* is ``None`` when it is acceptable.

    With *key* the head must carry a valid MAC (only the key's holder can make one).

    Raises:
        ValueError: *head* is not ``seq:hash`` or ``seq:hash:mac``.
    """
    text = head.strip()
    seq_text, _, rest = text.partition(":")
    digest, _, mac = rest.partition(":")
    if not seq_text.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest) or (mac and ":" in mac):
        raise ValueError(f"a chain head must be 'seq:hash' or 'seq:hash:mac', got {head!r}")
    seq = int(seq_text)
    if key is None:
        return seq, digest, None
    if not mac:
        return seq, digest, "the chain head has no MAC although a key is given: forged (or written without the key)"
    if not hmac.compare_digest(_head_text(seq, digest, key), text):
        return seq, digest, "the chain head's MAC does not match the key: forged (or written with another key)"
    return seq, digest, None


# --------------------------------------------------------------------------------------------- placeholders

PLACEHOLDERS = ("host", "pid")
"""The placeholders a ``path`` or a store ``prefix`` may hold: ``{host}`` and ``{pid}`` of the writing process."""


def _host_label() -> str:
    """This host's name, with anything but letters, digits, ``.`` and ``-`` made ``_`` (safe in a path or key)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname()) or "host"


def _template(text: str, what: str) -> bool:
    """Check the placeholders of *text* (the *what* option); ``True`` when it must be expanded.

    Text without ``{`` or ``}`` is taken as it is. Otherwise it is a template:
    ``{host}`` and ``{pid}`` are expanded, ``{{`` and ``}}`` stand for a brace.

    Raises:
        ValueError: An unknown placeholder, a format spec, or a lone brace.
    """
    if "{" not in text and "}" not in text:
        return False
    hint = "the placeholders are {host} and {pid} (write {{ or }} for a literal brace)"
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text)]
    except ValueError as exc:
        raise ValueError(f"audit {what} {text!r}: {exc}; {hint}") from None
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(f"audit {what} {text!r}: unknown placeholder {{{name}}}; {hint}")
        if spec or conversion:
            raise ValueError(f"audit {what} {text!r}: placeholder {{{name}}} takes no format spec or conversion")
    return True


def _expand(text: str) -> str:
    """*text* (a checked template) with ``{host}`` and ``{pid}`` of this process."""
    return text.format(host=_host_label(), pid=os.getpid())


def _placeholders(text: str) -> set[str]:
    """The placeholders *text* (a checked template, or plain text) uses."""
    if "{" not in text and "}" not in text:
        return set()
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# --------------------------------------------------------------------------------------------- anchors


class FileAnchor:
    """Publish a chain's head to a local file, replaced atomically (a temp file, ``fsync``, rename).

    Give it a place with its own permissions (the log's writers may write
    it, but whoever could rewrite the log should not be able to rewrite it
    unseen: e.g. a file another system copies away, or a directory with an
    append-only backup). ``{host}`` and ``{pid}`` are expanded as in a
    :class:`FileSink` path.

    Raises:
        ValueError: *path* holds an unknown placeholder or a lone brace.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        text = os.fspath(path)
        self._templated = _template(text, "anchor_path")
        self.template = os.path.abspath(text)
        """The path as configured (absolute), placeholders and all."""

    @property
    def path(self) -> str:
        """The file this process writes: the template with this process's ``{host}`` and ``{pid}``."""
        return _expand(self.template) if self._templated else self.template

    def describe(self) -> str:
        return f"file {self.path}"

    def __repr__(self) -> str:
        return f"FileAnchor({self.template!r})"

    def publish(self, head: str) -> None:
        """Replace the file's content with *head* (and a newline), atomically and durably."""
        path = self.path
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(temp, flags, 0o640)
        try:
            try:
                data = memoryview(head.encode("ascii") + b"\n")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if hasattr(os, "O_DIRECTORY"):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class StoreAnchor:
    """Publish a chain's head to the object *name* of a ``Store``, overwritten atomically each time.

    ``{host}`` and ``{pid}`` in *name* are expanded as in a :class:`FileSink` path.

    Raises:
        ValueError: *name* is empty, or holds an unknown placeholder or a lone brace.
    """

    def __init__(self, store: Store, name: str = "audit-head") -> None:
        self.store = store
        self.template = name.strip("/")
        """The object name as configured, placeholders and all."""
        if not self.template:
            raise ValueError("the audit anchor_name must not be empty")
        self._templated = _template(self.template, "anchor_name")

    @property
    def name(self) -> str:
        """The object this process writes."""
        return _expand(self.template) if self._templated else self.template

    def describe(self) -> str:
        return f"{self.store!r}:{self.name}"

    def __repr__(self) -> str:
        return f"StoreAnchor({self.store!r}, {self.template!r})"

    def publish(self, head: str) -> None:
        """Replace the object's content with *head* (and a newline)."""
        self.store.write_atomic(self.name, head.encode("ascii") + b"\n", overwrite=True)


class _Anchor(Protocol):
    template: str

    def publish(self, head: str) -> None: ...

    def describe(self) -> str: ...


class HeadNotPublishedError(AuditError):
    """The record was written to the log, but the chain head could not be published to the anchor."""


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
        self, path: str | os.PathLike[str], *, key: _Key | None = None, anchor: FileAnchor | StoreAnchor | None = None
    ) -> None:
        text = os.fspath(path)
        templated = _template(text, "path")
        self.template = os.path.abspath(text)
        """The path as configured (absolute), placeholders and all."""
        self._templated = templated
        self._expanded: tuple[int, str] | None = None  # (pid, path) of the last expansion
        self._key = _key_bytes(key)
        if anchor is not None:
            lacking = _placeholders(text) - _placeholders(anchor.template)
            if lacking:
                names = ", ".join(f"{{{name}}}" for name in sorted(lacking))
                raise ValueError(
                    f"the audit anchor {anchor.template!r} must hold {names} like the path {text!r}: "
                    "each chain needs its own anchor"
                )
        self.anchor: _Anchor | None = anchor

    @property
    def path(self) -> str:
        """The file this process writes: the template with this process's ``{host}`` and ``{pid}``."""
        if not self._templated:
            return self.template
        pid = os.getpid()
        expanded = self._expanded
        if expanded is None or expanded[0] != pid:
            expanded = self._expanded = (pid, _expand(self.template))
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
                    seq, prev = (0, GENESIS) if last is None else _checked_link(last, self._key)
                except ValueError as exc:
                    raise AuditError(
                        f"refusing to append to the audit log {path}: its last record is damaged ({exc}); "
                        f"run 'python -m remote_store_transfer.audit verify {path}' and move the file aside"
                    ) from exc
                line, digest = _seal(record, seq + 1, prev, self._key)
                data = memoryview(line + b"\n")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
                if self.anchor is not None:  # under the lock: heads are published in chain order
                    try:
                        self.anchor.publish(_head_text(seq + 1, digest, self._key))
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

    def __init__(self, store: Store, prefix: str = "audit", *, key: _Key | None = None) -> None:
        self.store = store
        self.template = prefix.strip("/")
        """The prefix as configured, placeholders and all."""
        self._templated = _template(self.template, "prefix")
        self._key = _key_bytes(key)
        self._lock = threading.Lock()
        self._new_chain()

    def _new_chain(self) -> None:
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._pid = os.getpid()
        self.prefix = _expand(self.template).strip("/") if self._templated else self.template
        self.chain = f"{started}-{_host_label()}-{self._pid}-{uuid.uuid4().hex[:8]}"
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


def _dumps(record: Mapping[str, Any]) -> str:
    """*record* as JSON for a log message: never raises (what JSON cannot hold becomes its ``repr``)."""
    try:
        return json.dumps(record, separators=(",", ":"), default=repr)
    except Exception:  # noqa: BLE001 -- a log message must not fail
        return repr(record)


@dataclass(frozen=True)
class _Built:
    """A record, and the error that kept it from being built (then the record is a best-effort one)."""

    record: dict[str, Any]
    error: Exception | None


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
        path: Local JSON Lines file (a :class:`FileSink`). ``{host}`` and
            ``{pid}`` in it are expanded by each writing process: one file, one
            chain per process (for trees on worker processes or a cluster).
        store: A ``Store`` to write one object per record to (a :class:`StoreSink`).
        prefix: Folder in *store* for the records (``{host}`` and ``{pid}`` allowed too).
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
            ``remote_store_transfer`` logger. The same holds when the record
            cannot be built (an *actor* callable that raises...): a
            best-effort record is logged instead.
        anchor_path: With *path*: publish the chain head (``seq:hash``, and
            ``:mac`` with a key) to this file after each record, replaced
            atomically (:class:`FileAnchor`); ``audit verify --head`` checks
            the log against it. It must hold the placeholders *path* holds.
        anchor_store: With *path*: publish the chain head to the object
            *anchor_name* of this ``Store`` instead (:class:`StoreAnchor`).
        anchor_name: The object of *anchor_store* (default ``"audit-head"``;
            ``{host}`` and ``{pid}`` allowed, required when *path* has them).
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
        anchor_path: str | os.PathLike[str] | None = None,
        anchor_store: Store | None = None,
        anchor_name: str | None = None,
    ) -> None:
        given = [name for name, value in (("path", path), ("store", store), ("sink", sink)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, store or sink (got {given or 'none'})")
        anchor: FileAnchor | StoreAnchor | None = None
        if anchor_path is not None and anchor_store is not None:
            raise ValueError("give at most one of anchor_path or anchor_store")
        if anchor_name is not None and anchor_store is None:
            raise ValueError("anchor_name names an object of anchor_store: give anchor_store too")
        if anchor_path is not None:
            anchor = FileAnchor(anchor_path)
        elif anchor_store is not None:
            anchor = StoreAnchor(anchor_store, "audit-head" if anchor_name is None else anchor_name)
        if anchor is not None and path is None:
            raise ValueError("an anchor (anchor_path, anchor_store) is supported with path only")
        if on_failure not in ("raise", "log"):
            raise ValueError(f"on_failure must be 'raise' or 'log', got {on_failure!r}")
        if actor is not None and not (isinstance(actor, str) or callable(actor)):
            raise TypeError(f"actor must be a string or a callable, got {actor!r}")
        if host is not None and not isinstance(host, str):
            raise TypeError(f"host must be a string, got {host!r}")
        if path is not None:
            sink = FileSink(path, key=key, anchor=anchor)
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
        if end.store is None:  # os.fsdecode: a bytes path (which the core accepts) is recorded as text
            return {"local": os.fsdecode(os.path.abspath(end.path))}
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
            except HeadNotPublishedError:
                files.written.append(context.id)  # the record is in the log; only its head is not published
                raise
            except Exception:
                files.unrecorded.append(context.id)
                raise
            files.written.append(context.id)

    def _built(self, build: Callable[[], dict[str, Any]], fallback: Callable[[], dict[str, Any]]) -> _Built:
        """The record *build* makes, checked to be JSON data; on failure *fallback*'s, with the error."""
        try:
            record = build()
            json.dumps(record, ensure_ascii=True, allow_nan=False)
        except Exception as exc:  # noqa: BLE001 -- the record must not be lost silently: reported by the caller
            best: dict[str, Any] = {}
            with contextlib.suppress(Exception):
                best = fallback()
            with contextlib.suppress(Exception):
                redacted = self._redact.value(_plain(best))
                best = redacted if isinstance(redacted, dict) else best
            return _Built(best, exc)
        return _Built(record, None)

    def _fallback_record(self, context: TransferContext, error: BaseException | None) -> dict[str, Any]:
        """A best-effort record of *context*: every field that can be had."""
        record: dict[str, Any] = {"id": context.id, "operation": context.operation}
        fields: dict[str, Callable[[], object]] = {
            "start": lambda: _utc(context.started),
            "end": lambda: _utc(time.time()),
            "source": lambda: self._endpoint(context.source),
            "destination": lambda: self._endpoint(context.destination),
            "bytes": lambda: context.bytes_transferred,
        }
        for name, get in fields.items():
            with contextlib.suppress(Exception):
                record[name] = get()
        record["outcome"] = "success" if error is None else "failure"
        record["error"] = None if error is None else _error(error)
        return record

    def _build_failed(self, subject: str, ident: str, operation: str, built: _Built, extra: dict[str, str]) -> None:
        """Log a record that could not be built (and raise :class:`AuditError` with ``on_failure="raise"``)."""
        assert built.error is not None
        record = built.record
        outcome = record.get("outcome")
        cause = self._redact(f"{type(built.error).__name__}: {built.error}")
        log.error(
            "audit record of %s %s (%s) could not be built: %s; a best-effort record: %s",
            subject,
            ident,
            outcome,
            cause,
            _dumps(record),
            extra={"event": "audit.write_failed", **extra, "outcome": str(outcome)},
        )
        if self.on_failure == "raise":
            raise AuditError(
                f"{subject} {ident} ({operation}, {outcome}) could not be recorded in the audit log "
                f"{self.sink.describe()}: its record could not be built: {cause}",
                record=record,
                outcome=None if outcome is None else str(outcome),
            ) from built.error

    @hookimpl(trylast=True)
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        built = self._built(lambda: self.record(context, error), lambda: self._fallback_record(context, error))
        if built.error is not None:
            if context.batch is not None:
                files = self._batch_files(context.batch)
                with files.lock:
                    files.unrecorded.append(context.id)
            self._build_failed(
                "transfer", context.id, context.operation, built, {"transfer_id": context.id, "stage": "build"}
            )
            return
        record = built.record
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
                _dumps(record),
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

    def _fallback_batch_record(self, batch: Batch, result: TreeResult) -> dict[str, Any]:
        """A best-effort batch record: every field that can be had."""
        record: dict[str, Any] = {"kind": "batch", "id": batch.id, "operation": batch.operation}
        files = self._batch_files(batch)
        fields: dict[str, Callable[[], object]] = {
            "start": lambda: _utc(batch.started),
            "end": lambda: _utc(time.time()),
            "source": lambda: self._endpoint(batch.source),
            "destination": lambda: self._endpoint(batch.destination),
            "bytes": lambda: result.bytes_transferred,
            "outcome": lambda: batch.outcome(result),
            "files": lambda: list(batch.transfer_ids) if batch.remote else list(files.written),
            "unrecorded": lambda: list(files.unrecorded),
        }
        for name, get in fields.items():
            with contextlib.suppress(Exception):
                record[name] = get()
        return record

    @hookimpl(trylast=True)
    def post_batch(self, batch: Batch, result: TreeResult) -> None:
        try:
            built = self._built(
                lambda: self.batch_record(batch, result), lambda: self._fallback_batch_record(batch, result)
            )
        finally:
            batch.state.pop(self._batch_key, None)
        if built.error is not None:
            self._build_failed("tree", batch.id, batch.operation, built, {"batch_id": batch.id, "stage": "build"})
            return
        record = built.record
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
                _dumps(record),
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
    head: str | None = None,
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
        head: The chain head an anchor published (the content of the
            ``anchor_path`` file or ``anchor_store`` object: ``seq:hash``, or
            ``seq:hash:mac`` with a key). Read it *before* the log. The log
            must hold that record, unchanged: records removed from the end, a
            file truncated, or the whole log replaced by a new chain are
            detected. With *key* the head's MAC must be valid (proving that
            the key's holder published it).

    Returns:
        A :class:`VerifyResult`; ``ok`` is ``True`` for an intact log
        (an empty log is intact).

    Raises:
        OSError: The file cannot be read.
        ValueError: A malformed *anchor* or *head*.
    """
    key_bytes = _key_bytes(key)
    return _verify(_lines(source), key_bytes, _checks(key_bytes, anchor, head))


@dataclass(frozen=True)
class _Check:
    """A record the log must hold: from an ``anchor`` or a ``head`` (*problem*: what is wrong with it, if anything)."""

    name: str
    seq: int
    hash: str
    problem: str | None = None


def _checks(key: bytes | None, anchor: str | None, head: str | None) -> list[_Check]:
    checks = []
    if anchor is not None:
        checks.append(_Check("anchor", *_parse_anchor(anchor)))
    if head is not None:
        checks.append(_Check("head", *_parse_head(head, key)))
    return checks


def _verify(source: Iterator[_Line], key_bytes: bytes | None, checks: list[_Check]) -> VerifyResult:
    """:func:`verify_chain` of the lines of *source*, which it reads to the end (whatever it finds)."""
    lines = _Counted(source)
    previous: _Line | None = None
    seen: set[str] = set()
    for line in lines:
        problem = _parse(line, key_bytes)
        if problem is not None:
            return _fail(lines, line.number, problem)
        expected_seq = 1 if previous is None else (previous.seq or 0) + 1
        expected_prev = GENESIS if previous is None else previous.hash
        if line.seq != expected_seq or line.prev != expected_prev:
            where, problem = _classify(line, previous, expected_seq, lines)
            return _fail(lines, where, problem)
        for check in checks:
            if line.seq != check.seq:
                continue
            if check.problem is not None:
                return _fail(lines, line.number, check.problem)
            if line.hash != check.hash:
                replaced = " (or the log was replaced)" if check.name == "head" else ""
                return _fail(
                    lines, line.number, f"record seq {check.seq} does not match the {check.name}: altered{replaced}"
                )
            seen.add(check.name)
        previous = line
    for check in checks:
        if check.name not in seen:
            end = previous.seq if previous else 0
            reason = check.problem or (
                f"the log ends at seq {end} but the {check.name} names seq {check.seq}: "
                "records were removed from the end"
                + (" (or the file truncated, or replaced)" if check.name == "head" else "")
            )
            return VerifyResult(False, lines.count, lines.count + 1, reason)
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


# --------------------------------------------------------------------------------------------- several logs


@dataclass(frozen=True)
class MissingRecord:
    """A file record that a batch record lists (in ``files`` or ``unrecorded``) and no verified log holds.

    Attributes:
        batch: The batch record's ``id`` (the tree call's ``Batch.id``).
        log: The log that holds the batch record: its path (for :func:`verify_store`, its chain's folder).
        record: The batch record's 1-based line in that log (its number in the chain).
        id: The ``id`` of the file record.
    """

    batch: str
    log: str
    record: int
    id: str


def _few(ids: list[str], limit: int = 10) -> str:
    """*ids*, comma-separated, at most *limit* of them."""
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_logs` found in a set of logs.

    Attributes:
        chains: Each log's :class:`VerifyResult` (as :func:`verify_chain`
            gives it), by path, in the order the logs were given.
        batches: How many batch records the logs hold.
        listed: How many file record ids those batch records list in ``files``.
        missing: The listed ids that no log holds a file record for (by log,
            then batch record, then their order in ``files``): a record lost
            or removed, or the log of a worker that was not given.
        unrecorded: The ids batch records list in ``unrecorded``: records their
            writer could not write and said so (``on_failure="log"``); not a
            failure of the logs, but transfers without a record.
    """

    chains: dict[str, VerifyResult]
    batches: int = 0
    listed: int = 0
    missing: tuple[MissingRecord, ...] = ()
    unrecorded: tuple[MissingRecord, ...] = ()

    @property
    def intact(self) -> bool:
        """``True`` when every chain is intact."""
        return all(result.ok for result in self.chains.values())

    @property
    def complete(self) -> bool:
        """``True`` when every id the batch records list has its file record in one of the logs."""
        return not self.missing

    @property
    def ok(self) -> bool:
        """``True`` when every chain is intact and the batch records are complete."""
        return self.intact and self.complete

    @property
    def records(self) -> int:
        """How many records (lines) the logs hold in all."""
        return sum(result.records for result in self.chains.values())

    def missing_by_batch(self) -> dict[tuple[str, int, str], list[str]]:
        """The missing ids grouped by batch record: ``{(log, record, batch): [id, ...]}``, in log order."""
        groups: dict[tuple[str, int, str], list[str]] = {}
        for item in self.missing:
            groups.setdefault((item.log, item.record, item.batch), []).append(item.id)
        return groups

    def incomplete(self) -> list[tuple[str, int, str]]:
        """One ``(log, record, message)`` per batch record with missing file records, in log order.

        The message names the batch and (the first ten of) the missing ids.
        """
        return [
            (log, record, f"batch {batch} lists {len(ids)} file record(s) that none of the logs holds: {_few(ids)}")
            for (log, record, batch), ids in self.missing_by_batch().items()
        ]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON data: ``ok``, ``records``, ``intact``, ``complete``, ``batches``,
        ``listed``, ``missing`` and ``unrecorded`` (each ``{"batch", "file", "record", "id"}``),
        and ``logs``: per log ``{"file", "ok", "records", "first_bad", "reason"}``."""

        def items(records: tuple[MissingRecord, ...]) -> list[dict[str, Any]]:
            return [{"batch": m.batch, "file": m.log, "record": m.record, "id": m.id} for m in records]

        return {
            "ok": self.ok,
            "records": self.records,
            "intact": self.intact,
            "complete": self.complete,
            "batches": self.batches,
            "listed": self.listed,
            "missing": items(self.missing),
            "unrecorded": items(self.unrecorded),
            "logs": [
                {"file": log, "ok": r.ok, "records": r.records, "first_bad": r.first_bad, "reason": r.reason}
                for log, r in self.chains.items()
            ],
        }

    def __str__(self) -> str:
        broken = sum(not result.ok for result in self.chains.values())
        logs = f"{len(self.chains)} log{'s' if len(self.chains) != 1 else ''}, {self.records} records"
        chains = "every chain intact" if not broken else f"{broken} chain{'s' if broken != 1 else ''} broken"
        if not self.batches:
            batches = "no batch records"
        elif self.complete:
            batches = f"{self.batches} batch record(s) list {self.listed} file records: all present"
        else:
            batches = (
                f"{self.batches} batch record(s) list {self.listed} file records: "
                f"{len(self.missing)} missing from the logs"
            )
        return f"{'OK' if self.ok else 'FAILED'}: {logs}, {chains}; {batches}"


@dataclass
class _BatchSeen:
    id: str
    log: str
    record: int
    files: list[str]
    unrecorded: list[str]


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


class _Records:
    """The file record ids and the batch records of a set of logs, noted as their lines are verified."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.batches: list[_BatchSeen] = []

    def reading(self, log: str, lines: Iterator[_Line]) -> Iterator[_Line]:
        """*lines* (of *log*), each noted on its way through."""
        for line in lines:
            self._note(log, line)
            yield line

    def _note(self, log: str, line: _Line) -> None:
        if not line.complete or b'"id"' not in line.raw:
            return
        try:
            data = json.loads(line.raw)
        except ValueError:
            return  # not a record: the chain's verification reports it
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        kind = data.get("kind")
        if kind is None:  # a file record
            self.ids.add(data["id"])
        elif kind == "batch":
            files, unrecorded = _strings(data.get("files")), _strings(data.get("unrecorded"))
            self.batches.append(_BatchSeen(data["id"], log, line.number, files, unrecorded))

    def report(self, chains: dict[str, VerifyResult]) -> VerifyReport:
        missing: list[MissingRecord] = []
        unrecorded: list[MissingRecord] = []
        for batch in self.batches:
            missing += (MissingRecord(batch.id, batch.log, batch.record, i) for i in batch.files if i not in self.ids)
            unrecorded += (MissingRecord(batch.id, batch.log, batch.record, i) for i in batch.unrecorded)
        listed = sum(len(batch.files) for batch in self.batches)
        return VerifyReport(chains, len(self.batches), listed, tuple(missing), tuple(unrecorded))


def verify_logs(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    key: _Key | None = None,
    anchors: Mapping[str | os.PathLike[str], str] | None = None,
    heads: Mapping[str | os.PathLike[str], str] | None = None,
) -> VerifyReport:
    """Verify a set of audit logs: each one's chain, and the completeness of their batch records.

    Give every log the records of the trees may be in: with ``{host}`` /
    ``{pid}`` in the audit ``path``, the caller's log (it holds the batch
    records) and each worker's. Each log's chain is checked as
    :func:`verify_chain` does; then every id a batch record lists in
    ``files`` must have its file record in one of the logs. A file record
    removed from a worker's log -- even from its end, where its chain alone
    cannot tell -- or a worker's log that is missing from *paths* shows up
    in :attr:`VerifyReport.missing`, naming the batch and the id.

    Args:
        paths: The log files (a path is read once however often it is given).
        key: The HMAC key the records were written with, if any (the same for all).
        anchors: ``{path: "seq:hash"}``: anchors (see :func:`verify_chain`) of some of the logs.
        heads: ``{path: head}``: the published chain heads (see :func:`verify_chain`) of some of the logs.

    Returns:
        A :class:`VerifyReport`; ``ok`` when every chain is intact and no listed file record is missing.

    Raises:
        OSError: A file cannot be read (``filename`` names it).
        ValueError: No path given, an anchor or head for a log that is not in *paths*, or a malformed one.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    key_bytes = _key_bytes(key)
    logs: dict[str, str] = {}  # real path -> path as given, in order
    for path in paths:
        logs.setdefault(os.path.realpath(path), os.fspath(path))
    if not logs:
        raise ValueError("no audit log given")
    anchored: dict[str, list[_Check]] = {}
    for name, given in (("anchor", anchors), ("head", heads)):
        for path, text in (given or {}).items():
            real = os.path.realpath(path)
            if real not in logs:
                article = "an" if name == "anchor" else "a"
                raise ValueError(
                    f"{article} {name} is given for {os.fspath(path)!r}, which is not among the logs to verify"
                )
            anchored.setdefault(real, []).extend(
                _checks(key_bytes, text, None) if name == "anchor" else _checks(key_bytes, None, text)
            )
    records = _Records()
    chains = {
        log: _verify(records.reading(log, _lines(log)), key_bytes, anchored.get(real, [])) for real, log in logs.items()
    }
    return records.report(chains)


def verify_store(store: Store, prefix: str = "audit", *, key: _Key | None = None) -> VerifyResult:
    """Verify every chain a :class:`StoreSink` wrote under *prefix* of *store*, and their batch records.

    A sink whose prefix has placeholders (``"audit/{host}"``) writes under
    the expanded prefixes: verify their common folder (``"audit"``). Besides
    each chain, every id a batch record lists in ``files`` must have its file
    record in one of the chains (the workers of a tree write their own).

    Returns:
        ``ok`` when every chain is intact and complete; ``records`` counts
        the records of all chains; on failure ``first_bad`` is the record's
        number in its chain and ``reason`` names the chain and the object
        (for a missing file record: the batch record, and the missing ids).
    """
    prefix = prefix.strip("/")
    key_bytes = _key_bytes(key)
    chains: dict[str, list[str]] = {}
    if not prefix or store.exists(prefix):
        for info in store.list_files(prefix, recursive=True):
            path = str(info.path)
            relative = path[len(prefix) + 1 :] if prefix else path
            chain, _, name = relative.rpartition("/")
            chains.setdefault(chain, []).append(name)
    records = _Records()
    folders: dict[str, tuple[str, list[str]]] = {}
    total = 0
    for chain in sorted(chains):
        names = sorted(chains[chain])
        folder = f"{prefix}/{chain}" if prefix else chain
        folders[folder] = (chain, names)
        objects = [store.read_bytes(f"{folder}/{name}") for name in names]
        result = _verify(records.reading(folder, _lines(objects)), key_bytes, [])
        total += result.records
        if not result.ok:
            assert result.first_bad is not None
            bad = names[min(result.first_bad, len(names)) - 1]
            return VerifyResult(
                False, total, result.first_bad, f"chain {chain}, object {folder}/{bad}: {result.reason}"
            )
    incomplete = next(iter(records.report({}).missing_by_batch().items()), None)
    if incomplete is None:
        return VerifyResult(True, total, None, "intact" if total else "empty log")
    (folder, number, batch), ids = incomplete
    chain, names = folders[folder]
    where = f"under {prefix!r}" if prefix else "in the store"
    return VerifyResult(
        False,
        total,
        number,
        f"chain {chain}, object {folder}/{names[number - 1]}: batch {batch} lists {len(ids)} file record(s) "
        f"that no chain {where} holds: {_few(ids)}",
    )
