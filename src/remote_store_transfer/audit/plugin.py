"""The built-in ``audit`` plugin: one hash-chained record per transfer and per deletion, and one per tree call.

A tree call (``upload_tree``...) writes one record per file as usual, one
per file its ``delete=True`` deletes (``"operation": "delete"``), plus one
batch record (``"kind": "batch"``) when the tree ends, which lists the ids
of the file records (deletions included) written for it.

Enable it with ``enable_plugin("audit", path="/var/log/transfers.jsonl")`` or
``[plugins.audit]`` in the config file; see ``docs/plugins/audit.md`` for
the record fields, the sinks and what happens when a record cannot be written.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from remote_store import Secret

from remote_store_transfer.audit.anchors import FileAnchor, HeadNotPublishedError, StoreAnchor
from remote_store_transfer.audit.sinks import AuditSink, FileSink, StoreSink
from remote_store_transfer.errors import AuditError
from remote_store_transfer.locations import store_location
from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.plugin._redact import Redactor
from remote_store_transfer.plugin.integrity import digest_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from remote_store import Store

    from remote_store_transfer.audit.records import Key
    from remote_store_transfer.batch import Batch, TreeResult
    from remote_store_transfer.context import DeleteContext, Endpoint, TransferContext

__all__ = ["NAME", "AuditPlugin"]

NAME = "audit"

log = logging.getLogger("remote_store_transfer")


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
    """Write one hash-chained audit record per transfer and per deletion (success and failure alike).

    A tree call (``upload_tree``, ``download_tree``, ``transfer_tree``) also
    gets one record per file its ``delete=True`` deletes (``post_delete``:
    see :meth:`delete_record`) and one batch record (``"kind": "batch"``),
    written in ``post_batch`` after its files' records: see :meth:`batch_record`.

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
            :class:`~remote_store_transfer.batch.Batch` as ``context``
            (it has ``id``, ``operation``, ``source``, ``destination`` and ``state`` too);
            for a deletion record, the :class:`~remote_store_transfer.context.DeleteContext`.
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
        key: Key | None = None,
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

    def _append(self, context: TransferContext | DeleteContext, record: dict[str, Any]) -> None:
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

    def _write_failed(
        self, subject: str, ident: str, operation: str, record: dict[str, Any], exc: Exception, extra: dict[str, str]
    ) -> None:
        """Log a record the sink could not write (and raise :class:`AuditError` with ``on_failure="raise"``)."""
        outcome = record["outcome"]
        cause = self._redact(f"{type(exc).__name__}: {exc}")
        log.error(
            "audit record of %s %s (%s) could not be written to %s: %s; the record: %s",
            subject,
            ident,
            outcome,
            self.sink.describe(),
            cause,
            _dumps(record),
            extra={"event": "audit.write_failed", **extra, "outcome": outcome},
        )
        if self.on_failure == "raise":
            raise AuditError(
                f"{subject} {ident} ({operation}, {outcome}) could not be recorded in the audit "
                f"log {self.sink.describe()}: {cause}",
                record=record,
                outcome=outcome,
            ) from exc

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
        except Exception as exc:  # noqa: BLE001 -- any sink failure: logged, and raised with on_failure="raise"
            self._write_failed("transfer", context.id, context.operation, record, exc, {"transfer_id": context.id})

    def delete_record(self, context: DeleteContext, error: BaseException | None) -> dict[str, Any]:
        """The (redacted) audit record of the deletion *context* ending with *error*, without ``seq``/``prev``/``hash``.

        A file record like a transfer's (no ``kind``), with ``"operation": "delete"``
        and the deleted file as ``target``; the tree's batch record lists its ``id``.
        """
        actor = cast("Callable[[object], str] | str", self.actor)
        user = actor(context) if callable(actor) else actor
        record: dict[str, Any] = {
            "id": context.id,
            "operation": "delete",
            "start": _utc(context.started),
            "end": _utc(time.time()),
            "duration_s": round(context.elapsed(), 6),
            "actor": {"user": str(user), "host": self.host, "pid": os.getpid()},
            "target": self._endpoint(context.target),
            "size": context.size,
            "outcome": "success" if error is None else "failure",
            "error": None if error is None else _error(error),
        }
        redacted = self._redact.value(record)
        assert isinstance(redacted, dict)
        return redacted

    def _fallback_delete_record(self, context: DeleteContext, error: BaseException | None) -> dict[str, Any]:
        """A best-effort deletion record: every field that can be had."""
        record: dict[str, Any] = {"id": context.id, "operation": "delete"}
        with contextlib.suppress(Exception):
            record["target"] = self._endpoint(context.target)
        record["outcome"] = "success" if error is None else "failure"
        record["error"] = None if error is None else _error(error)
        return record

    @hookimpl(trylast=True)
    def post_delete(self, context: DeleteContext, error: BaseException | None) -> None:
        built = self._built(
            lambda: self.delete_record(context, error), lambda: self._fallback_delete_record(context, error)
        )
        if built.error is not None:
            if context.batch is not None:
                files = self._batch_files(context.batch)
                with files.lock:
                    files.unrecorded.append(context.id)
            self._build_failed("deletion", context.id, "delete", built, {"transfer_id": context.id, "stage": "build"})
            return
        try:
            self._append(context, built.record)
        except Exception as exc:  # noqa: BLE001 -- any sink failure: logged, and raised with on_failure="raise"
            self._write_failed("deletion", context.id, "delete", built.record, exc, {"transfer_id": context.id})

    def batch_record(self, batch: Batch, result: TreeResult) -> dict[str, Any]:
        """The (redacted) batch record of the tree call *batch* that ended with *result*.

        Without ``seq``/``prev``/``hash``. ``files`` lists the ``id`` of every
        file record this plugin wrote for the tree (one per attempt of each
        file that began), in the order they were written; ``unrecorded`` the
        ids of those it could not write (``on_failure="log"``); deletions
        (``delete=True``) are among them, one record each. When the files
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
        except Exception as exc:  # noqa: BLE001 -- any sink failure: logged, and raised with on_failure="raise"
            self._write_failed("tree", batch.id, batch.operation, record, exc, {"batch_id": batch.id})
