"""The contexts the per-file hooks receive: :class:`TransferContext` and :class:`DeleteContext` (a deletion)."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from remote_store_transfer.endpoint import Endpoint
from remote_store_transfer.locations import store_location

if TYPE_CHECKING:
    from collections.abc import Callable

    from remote_store import Store, WriteResult

    from remote_store_transfer.batch import Batch

__all__ = ["DeleteContext", "Endpoint", "Operation", "TransferContext", "describe_call"]

Operation = Literal["upload", "download", "transfer"]
"""The three operations: which public function was called."""

_PROCESS_TAG = uuid.uuid4().hex[:12]
_counter = itertools.count(1)


def _new_process_tag() -> None:
    """Give a forked child its own tag, so ids stay unique across processes."""
    global _PROCESS_TAG, _counter  # noqa: PLW0603
    _PROCESS_TAG = uuid.uuid4().hex[:12]
    _counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_process_tag)


def describe_call(operation: str, source: Endpoint, destination: Endpoint) -> str:
    """``"upload local:/a -> Store(...):b"``: an operation and both its ends, for messages."""
    return f"{operation} {source.describe()} -> {destination.describe()}"


class _Timed:
    """What every context has: an id, when it started, how long it has run."""

    __slots__ = ("_id", "started", "started_perf")
    _id: str | None
    started: float
    started_perf: float

    @property
    def id(self) -> str:
        """A unique id (unique across processes and hosts; transfers and deletions share one sequence).

        Made on first access: a random per-process tag plus a counter.
        """
        ident = self._id
        if ident is None:
            ident = self._id = f"{_PROCESS_TAG}-{next(_counter):08d}"
        return ident

    @property
    def started_at(self) -> datetime:
        """:attr:`started` as a timezone-aware UTC ``datetime``."""
        return datetime.fromtimestamp(self.started, tz=UTC)

    def elapsed(self) -> float:
        """Seconds since the call or deletion started (monotonic clock)."""
        return time.perf_counter() - self.started_perf


class TransferContext(_Timed):
    """Everything a plugin may know about one call of ``upload``, ``download`` or ``transfer``.

    One object is created per call, before ``pre_transfer``, and the same
    object is passed to every hook of that call. Plugins read it, and keep
    their own per-transfer state in :attr:`state`.

    Attributes:
        operation: ``"upload"``, ``"download"`` or ``"transfer"``.
        source: Where the bytes come from (local file for ``upload``).
        destination: Where the bytes go (local file for ``download``).
        overwrite: The caller's ``overwrite`` argument.
        replaces: Whether the call replaces an existing destination file, as
            far as it is known: in a tree call, ``True`` when the destination
            listing held the file and ``False`` for a new file (a tree writes
            new files into a store with ``overwrite=True`` too, without a
            per-file existence check); ``None`` for a single-file call
            (unknown: ``overwrite=True`` may or may not replace a file).
        size: The number of bytes the source holds, when known: the local
            file's size for ``upload`` (no remote call needed); ``None`` for
            ``download`` and ``transfer`` unless a ``pre_transfer``
            implementation sets it (``integrity`` and ``policy`` do, from the
            source store's ``get_file_info``). When it is known and the source
            ends before that many bytes were read, the call raises
            :class:`~remote_store_transfer.IncompleteTransferError` instead of
            reporting success.
        on_progress: The caller's ``on_progress`` callback, or ``None``.
        bytes_transferred: Running total of bytes read from the source so
            far. Inside ``on_chunk`` it already includes the current chunk;
            in ``post_transfer`` it is final. On success it equals the bytes
            written; on failure it is what had been read when the call failed,
            which may include one chunk that never reached the destination.
        write_result: The ``WriteResult`` returned by the destination store's
            ``write`` (upload and transfer), available in ``post_transfer``
            after a successful write; ``None`` otherwise.
        started: Wall-clock start time, seconds since the epoch (``time.time()``).
        started_perf: ``time.perf_counter()`` at start, for measuring durations.
        atomic: The caller's ``atomic`` argument.
        state: A dict private to this call where plugins keep per-transfer
            state. Use your plugin's name as key prefix to avoid clashes.
        batch: The :class:`~remote_store_transfer.batch.Batch` of the
            tree call this file belongs to (``upload_tree``...), or ``None``
            for a single-file call.
    """

    __slots__ = (
        "atomic",
        "batch",
        "bytes_transferred",
        "destination",
        "on_progress",
        "operation",
        "overwrite",
        "replaces",
        "size",
        "source",
        "state",
        "write_result",
    )

    def __init__(
        self,
        operation: Operation,
        source: Endpoint,
        destination: Endpoint,
        *,
        overwrite: bool,
        on_progress: Callable[[int], None] | None,
        size: int | None = None,
        atomic: bool = False,
        batch: Batch | None = None,
        replaces: bool | None = None,
    ) -> None:
        self.operation: Operation = operation
        self.source = source
        self.destination = destination
        self.overwrite = overwrite
        self.on_progress = on_progress
        self.size = size
        self.atomic = atomic
        self.batch = batch
        self.replaces = replaces
        self.bytes_transferred = 0
        self.write_result: WriteResult | None = None
        self.started = time.time()
        self.started_perf = time.perf_counter()
        self.state: dict[str, Any] = {}
        self._id: str | None = None

    def describe(self) -> str:
        """``"upload local:/a -> Store(...):b"``: the operation and both ends, for messages."""
        return describe_call(self.operation, self.source, self.destination)

    def __repr__(self) -> str:
        return f"<TransferContext {self.describe()} bytes={self.bytes_transferred}>"


class DeleteContext(_Timed):
    """Everything a plugin may know about one deletion: a destination file a tree's ``delete=True`` removes.

    One object is made per deletion, before ``pre_delete``, and the same
    object is passed to ``post_delete``. A deletion has no source and moves no
    bytes, so it is not a :class:`TransferContext`: plugins written for
    transfers never see one.

    Attributes:
        operation: Always ``"delete"``.
        target: The file to delete: an :class:`Endpoint` (a path in the
            destination store, or a local file when the destination is a folder).
        size: The file's size as the destination listing gave it.
        batch: The :class:`~remote_store_transfer.batch.Batch` of the tree call.
        started: Wall-clock start time, seconds since the epoch.
        started_perf: ``time.perf_counter()`` at start.
        state: A dict private to this deletion for plugins' state.
    """

    __slots__ = ("_location", "batch", "size", "state", "target")

    operation: Literal["delete"] = "delete"

    def __init__(self, target: Endpoint, *, size: int | None, batch: Batch | None) -> None:
        self.target = target
        self.size = size
        self.batch = batch
        self.started = time.time()
        self.started_perf = time.perf_counter()
        self.state: dict[str, Any] = {}
        self._id: str | None = None
        self._location: str | None = None

    @property
    def store(self) -> Store | None:
        """The store the file is deleted from, or ``None`` for a local file."""
        return self.target.store

    @property
    def path(self) -> str:
        """The store-relative path of the file (or its local path)."""
        return self.target.path

    @property
    def location(self) -> str:
        """Where the file physically is: ``"<backend>:<native path>"`` (``"s3:bucket/key"``, ``"local:/abs/path"``).

        Made from the store's public ``resolve()`` on first access (a local
        file: its absolute path). Raises what ``resolve()`` raises for a path
        the store refuses.
        """
        location = self._location
        if location is None:
            store = self.target.store
            if store is None:
                location = f"local:{os.path.abspath(self.target.path)}"
            else:
                location = store_location(store, self.target.path)
            self._location = location
        return location

    def describe(self) -> str:
        """``"delete Store(...):b/x.txt"``: the operation and the file, for messages."""
        return f"delete {self.target.describe()}"

    def __repr__(self) -> str:
        return f"<DeleteContext {self.describe()}>"
