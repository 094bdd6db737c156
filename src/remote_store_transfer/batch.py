"""What a tree call is and what it produced: :class:`Batch`, :class:`FileOutcome` and :class:`TreeResult`.

Plain data, shared by the walk, the planner, the runner, the hooks and the
callers. Nothing here moves bytes.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from remote_store_transfer.endpoint import Endpoint

__all__ = ["Batch", "FileOutcome", "Status", "TreeOperation", "TreeResult"]

TreeOperation = Literal["upload_tree", "download_tree", "transfer_tree"]
"""Which tree function was called."""

Status = Literal["transferred", "skipped", "failed", "deleted"]
"""How one file ended (``"deleted"``: removed from the destination by ``delete=True``)."""

_counter = itertools.count(1)


class Batch:
    """One call of ``upload_tree``, ``download_tree`` or ``transfer_tree``, as plugins see it.

    One object is made per tree call, before ``pre_batch``; the same object
    reaches ``post_batch`` and every file's context (``context.batch``).

    Attributes:
        id: A unique id for this tree call (unique across processes and hosts).
        operation: ``"upload_tree"``, ``"download_tree"`` or ``"transfer_tree"``.
        source: The source root: a local folder (``store is None``) or a
            prefix in a store.
        destination: The destination root, likewise.
        options: The call's options as plain data, by name
            (``TreeOptions.plain()``: every option of
            :mod:`remote_store_transfer.tree.options` but the callbacks and
            the executor).
        dry_run: ``True`` when nothing is moved (``options["dry_run"]``).
        planned_files: How many files will be transferred, once known: in a
            dry run from the start (``pre_batch`` sees it); otherwise when the
            source listing has been read to its end (``None`` until then,
            since files start moving before a long listing ends).
        planned_bytes: Their total size, known when ``planned_files`` is.
        listing_complete: ``True`` once the source listing has been read to its end.
        plan: In a dry run, the planned :class:`TreeResult` (what would be
            transferred, skipped and deleted); ``None`` otherwise.
        started: Wall-clock start, seconds since the epoch.
        state: A dict private to this tree call where plugins keep their
            state (use your plugin's name as key prefix).
        error: In ``post_batch``, the exception the tree call is raising (a
            ``pre_batch`` veto, ``KeyboardInterrupt``...), else ``None``.
        remote: ``True`` when the files run in worker processes (a
            ``ProcessPoolExecutor`` or a Dask client): their per-file hooks
            then run there, not in this process.
        transfer_ids: The ``context.id`` of every try of every file that has
            ended, and of every deletion that ran its hooks, in the order they
            ended (filled in the caller's thread, whichever process the files ran in).
    """

    def __init__(
        self,
        operation: TreeOperation,
        source: Endpoint,
        destination: Endpoint,
        options: dict[str, Any],
    ) -> None:
        self.id = f"batch-{uuid.uuid4().hex[:12]}-{next(_counter):06d}"
        self.operation: TreeOperation = operation
        self.source = source
        self.destination = destination
        self.options = options
        self.dry_run = bool(options.get("dry_run", False))
        self.planned_files: int | None = None
        self.planned_bytes: int | None = None
        self.listing_complete = False
        self.plan: TreeResult | None = None
        self.started = time.time()
        self.started_perf = time.perf_counter()
        self.state: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.remote = False
        self.transfer_ids: list[str] = []

    def outcome(self, result: TreeResult) -> str:
        """``"success"``, ``"failure"`` (a file failed) or ``"incomplete"`` (for ``post_batch``).

        ``"incomplete"``: no file failed, but the tree did not run to its end:
        vetoed in ``pre_batch``, interrupted, or its listing never completed.
        """
        if not result.ok:
            return "failure"
        return "success" if self.error is None and self.listing_complete else "incomplete"

    @property
    def temp_tag(self) -> str:
        """A tag in the names of this tree's local temp files (``.NAME.TAG.HEX.part``), unique to the tree."""
        return self.id.removeprefix("batch-").replace("-", "")

    def elapsed(self) -> float:
        """Seconds since the tree call started (monotonic clock)."""
        return time.perf_counter() - self.started_perf

    def describe(self) -> str:
        """``"upload_tree local:/a -> Store(...):b"``: the operation and both roots, for messages."""
        return f"{self.operation} {self.source.describe()} -> {self.destination.describe()}"

    def __repr__(self) -> str:
        return f"<Batch {self.id} {self.describe()}>"


@dataclass
class FileOutcome:
    """How one file of a tree ended; what ``on_file`` receives.

    Attributes:
        path: The file's relative path ("/"-separated), the same at both ends.
        status: ``"transferred"``, ``"skipped"``, ``"failed"`` or ``"deleted"``.
        bytes: Bytes moved for this file (0 unless transferred or failed part-way).
        size: The source file's size, when known.
        reason: Why it was skipped (``"exists"``, ``"unchanged"``, ``"symlink"``,
            ``"special file (FIFO)"``...), or what was planned in a dry run.
        error: The exception of a failed file, else ``None``.
        attempts: How many times the transfer was tried (0 when skipped).
        dry_run: ``True`` when nothing was moved (the outcome is the plan).
        transfer_ids: The ``context.id`` of each try of this file (one per
            ``pre_transfer`` / ``post_transfer`` pair), in order; for a
            deletion, the ``DeleteContext.id`` when deletion hooks ran.
    """

    path: str
    status: Status
    bytes: int = 0
    size: int | None = None
    reason: str | None = None
    error: BaseException | None = None
    attempts: int = 0
    dry_run: bool = False
    transfer_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the error as ``"Type: message"``)."""
        return {
            "path": self.path,
            "status": self.status,
            "bytes": self.bytes,
            "size": self.size,
            "reason": self.reason,
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            "attempts": self.attempts,
            "dry_run": self.dry_run,
        }


@dataclass
class TreeResult:
    """What a tree call did (or, with ``dry_run``, would do).

    Attributes:
        transferred: Relative paths of the files written (in a dry run: that would be).
        skipped: Relative paths of the files left alone (already there,
            unchanged, or not regular files); why is in :attr:`reasons`.
        deleted: Relative paths deleted at the destination (``delete=True``).
        failed: Relative path -> the exception that failed it.
        reasons: Relative path -> why it was skipped.
        bytes_transferred: Bytes moved, over all files (in a dry run: the
            sizes of the files that would be transferred).
        dry_run: ``True`` when nothing was moved.
        batch_id: The :attr:`Batch.id` of the call.
        seconds: Wall-clock duration of the call.
    """

    transferred: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    bytes_transferred: int = 0
    dry_run: bool = False
    batch_id: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """``True`` when no file failed."""
        return not self.failed

    def add(self, outcome: FileOutcome) -> None:
        """Record *outcome* in the lists (not thread-safe: the runner calls it from one thread)."""
        if outcome.status == "transferred":
            self.transferred.append(outcome.path)
        elif outcome.status == "skipped":
            self.skipped.append(outcome.path)
            if outcome.reason:
                self.reasons[outcome.path] = outcome.reason
        elif outcome.status == "deleted":
            self.deleted.append(outcome.path)
        else:
            assert outcome.error is not None
            self.failed[outcome.path] = outcome.error
        self.bytes_transferred += outcome.bytes

    def summary(self) -> str:
        """``"3 transferred, 1 skipped, 0 failed, 0 deleted, 1234 bytes"``."""
        verb = "would be " if self.dry_run else ""
        return (
            f"{len(self.transferred)} {verb}transferred, {len(self.skipped)} skipped, {len(self.failed)} failed, "
            f"{len(self.deleted)} {verb}deleted, {self.bytes_transferred} bytes"
        )
