"""One file of a tree: check it, move it through the single-file core with retries, or delete it.

A :class:`Mover` does the per-file work for the runner, in whatever thread or
process the file runs in: in the caller's thread pool (the usual case) or in
a worker process (:mod:`remote_store_transfer.tree.worker` builds one there).
It never raises: a file's error travels in its
:class:`~remote_store_transfer.batch.FileOutcome`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import stat
import threading
import time
from typing import TYPE_CHECKING

from remote_store import AlreadyExists, CapabilityNotSupported, NotFound

from remote_store_transfer import streaming
from remote_store_transfer.batch import FileOutcome
from remote_store_transfer.capturing import capture
from remote_store_transfer.context import DeleteContext
from remote_store_transfer.endpoint import Endpoint
from remote_store_transfer.errors import TransferDenied
from remote_store_transfer.locations import local_file
from remote_store_transfer.plugin.calling import call_each
from remote_store_transfer.tree.plan import Side, check, refresh
from remote_store_transfer.tree.runner import retrying
from remote_store_transfer.tree.walk import join, mtime_metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from remote_store import Store

    from remote_store_transfer.batch import Batch
    from remote_store_transfer.plugin.manager import Dispatch
    from remote_store_transfer.tree.options import TreeOptions
    from remote_store_transfer.tree.plan import Decision
    from remote_store_transfer.tree.shipping import SharedStore
    from remote_store_transfer.tree.walk import Entry

__all__ = ["LinkInPath", "Mover", "refuse_links"]

log = logging.getLogger("remote_store_transfer")


class LinkInPath(NotADirectoryError):
    """A folder on the way to a local destination file is a symbolic link: the file would be written outside."""


def refuse_links(root: str, rel: str) -> None:
    """Raise :class:`LinkInPath` when a folder between the local *root* and its file *rel* is a symbolic link.

    Each folder is looked at with ``lstat`` (links not followed); *root*
    itself, as the caller gave it, may be a link. Folders that do not exist
    yet are made as real folders afterwards.
    """
    folder = root
    for part in rel.split("/")[:-1]:
        folder = os.path.join(folder, part)
        try:
            mode = os.lstat(folder).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise LinkInPath(errno.ENOTDIR, "a symbolic link, not a folder: refusing to write through it", folder)


_NOTHING_WRITTEN = (
    LinkInPath,
    AlreadyExists,
    FileExistsError,
    TransferDenied,
    CapabilityNotSupported,
    NotFound,
    FileNotFoundError,
    PermissionError,
)
"""Errors after which a failed file's destination is not ours to clean up (nothing was written by us)."""


class Mover:
    """The per-file work of one tree call.

    Args:
        dispatch: The plugin manager's dispatch (every hook fires per file).
        batch: The tree call, for ``context.batch``.
        src: The source store as the worker threads share it (its ``store`` is ``None``: a local folder).
        src_root: The source root: a prefix in the store, or a local folder.
        dst: The destination store, likewise.
        dst_root: The destination root.
        options: The tree's options (``atomic``, ``retries``, ``modify_window`` and ``dry_run`` are read here).
        keeps_mtime: The destination store keeps user metadata: send the source's mtime.
        progress: Called with every chunk's byte count (``None``: nothing observes chunks).
        cancel: Set on an interrupt: retries stop waiting.
        halt: Set when no new file may start.
    """

    def __init__(
        self,
        dispatch: Dispatch,
        batch: Batch,
        src: SharedStore,
        src_root: str,
        dst: SharedStore,
        dst_root: str,
        options: TreeOptions,
        *,
        keeps_mtime: bool,
        progress: Callable[[int], None] | None,
        cancel: threading.Event | None = None,
        halt: threading.Event | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.batch = batch
        self._src, self._dst = src, dst
        self._src_root, self._dst_root = src_root, dst_root
        self._locks = tuple({id(lock): lock for lock in (src.lock, dst.lock) if lock is not None}.values())
        self._folders: set[str] = set()
        """Destination folders known to exist (stores opened per thread: see :meth:`_first_in_folder`)."""
        self._folders_lock = threading.Lock()
        self.atomic = options.atomic
        self.retries = options.retries
        self.modify_window = options.modify_window
        self.dry_run = options.dry_run
        self.keeps_mtime = keeps_mtime
        self.progress = progress
        self.cancel = cancel if cancel is not None else threading.Event()
        self.halt = halt if halt is not None else threading.Event()

    @property
    def src(self) -> Endpoint:
        """The source root, with the store this thread may use."""
        return Endpoint(self._src.get(), self._src_root)

    @property
    def dst(self) -> Endpoint:
        """The destination root, with the store this thread may use."""
        return Endpoint(self._dst.get(), self._dst_root)

    def src_path(self, rel: str) -> str:
        """The source path of relative path *rel* (a store path or a local path)."""
        root = self._src_root
        return join(root, rel) if self._src.store is not None else os.path.join(root, rel)

    def dst_path(self, rel: str) -> str:
        """The destination path of relative path *rel*."""
        root = self._dst_root
        return join(root, rel) if self._dst.store is not None else os.path.join(root, rel)

    def task(self, entry: Entry, decision: Decision, dst: Entry | None = None) -> FileOutcome | None:
        """Check, then move one file with retries; never raises (the error is in the outcome).

        *dst* is the destination's listing entry (for a ``"check"`` decision).
        """
        if self.halt.is_set():
            return None
        with contextlib.ExitStack() as stack:
            for lock in self._locks:  # a store that is not thread-safe: one thread at a time
                stack.enter_context(lock)
            return self._task(entry, decision, dst)

    def _task(self, entry: Entry, decision: Decision, dst: Entry | None) -> FileOutcome:
        rel = entry.path
        attempts = 0
        moved = 0
        transfer_ids: list[str] = []
        partial_left = decision.reason == "new" and not self.atomic

        def attempt(n: int) -> None:
            nonlocal attempts, moved
            attempts = n
            if n > 1 and partial_left:  # a new file's earlier try left bytes: start it afresh
                self.remove_partial(rel)
            with self._first_in_folder(rel), capture() as contexts:
                try:
                    self.move(entry, decision)
                finally:
                    if contexts:
                        moved = contexts[-1].bytes_transferred
                        transfer_ids.append(contexts[-1].id)

        try:
            src_side = Side(self._src.get(), self._src_root)
            if decision.action == "check":
                assert dst is not None
                decision, entry = retrying(
                    lambda n: check(
                        decision,
                        entry,
                        dst,
                        src_side,
                        self.src_path(rel),
                        Side(self._dst.get(), self._dst_root),
                        self.dst_path(rel),
                        self.modify_window,
                    ),
                    self.retries,
                    self.cancel,
                )
                if decision.action == "skip":
                    return FileOutcome(rel, "skipped", size=entry.size, reason=decision.reason, dry_run=self.dry_run)
            if self.dry_run:
                return FileOutcome(rel, "transferred", entry.size, entry.size, decision.reason, dry_run=True)
            # the file's own time, kept in the source's metadata, travels on (one metadata call when the
            # listing did not carry it: S3's does not)
            entry = retrying(lambda n: refresh(entry, src_side, self.src_path(rel)), self.retries, self.cancel)
            retrying(attempt, self.retries, self.cancel)
        except BaseException as exc:  # noqa: BLE001 -- the outcome carries it to the caller's thread
            if partial_left and not isinstance(exc, _NOTHING_WRITTEN):
                self.remove_partial(rel)
            outcome = FileOutcome(rel, "failed", moved, entry.size, decision.reason, exc, attempts)
        else:
            outcome = FileOutcome(rel, "transferred", moved, entry.size, decision.reason, attempts=attempts)
        outcome.transfer_ids = tuple(transfer_ids)
        return outcome

    @contextlib.contextmanager
    def _first_in_folder(self, rel: str) -> Iterator[None]:
        """Hold a lock around the first write into each destination folder of a store opened per thread.

        Each thread then has its own SFTP connection, and two of them creating
        the same new folder at once fail one file: the server answers the
        loser with a generic failure (not "exists") that remote-store does not
        tolerate. The first file of a folder makes it alone; the rest follow
        in parallel.
        """
        if not self._dst.per_thread:
            yield
            return
        folder = posixpath.dirname(self.dst_path(rel))
        if folder in self._folders:
            yield
            return
        with self._folders_lock:
            yield
            while folder and folder not in self._folders:  # it and its parents exist now
                self._folders.add(folder)
                folder = posixpath.dirname(folder)

    def move(self, entry: Entry, decision: Decision) -> None:
        """One try at one file, through the single-file core."""
        dispatch, batch, rel, atomic = self.dispatch, self.batch, entry.path, self.atomic
        src_store, dst_store = self.src.store, self.dst.store
        # A file absent from the destination listing: on a store, no per-file existence check (the race is
        # documented); on a local disk, created exclusively (cheap, and nothing that appeared meanwhile is lost).
        # context.replaces tells plugins which of them replace a file (policy's deny_overwrite refuses only those).
        overwrite = decision.overwrite or dst_store is not None
        metadata = mtime_metadata(entry.mtime_ns) if self.keeps_mtime and entry.mtime_ns is not None else None
        if src_store is None:
            assert dst_store is not None
            streaming.upload(
                dispatch,
                dst_store,
                self.src_path(rel),
                self.dst_path(rel),
                overwrite,
                self.progress,
                atomic,
                metadata=metadata,
                batch=batch,
                replaces=decision.overwrite,
            )
        elif dst_store is None:
            local = self.dst_path(rel)
            refuse_links(self._dst_root, rel)  # never write outside the destination through a linked folder
            os.makedirs(os.path.dirname(local), exist_ok=True)
            streaming.download(
                dispatch,
                src_store,
                self.src_path(rel),
                local,
                overwrite,
                self.progress,
                atomic,
                size=entry.size,
                batch=batch,
                replaces=decision.overwrite,
            )
            if entry.mtime_ns is not None:  # the source's modification time travels with the file
                os.utime(local, ns=(time.time_ns(), entry.mtime_ns))
        else:
            streaming.transfer(
                dispatch,
                src_store,
                self.src_path(rel),
                dst_store,
                self.dst_path(rel),
                overwrite,
                self.progress,
                atomic,
                size=entry.size,
                metadata=metadata,
                batch=batch,
                replaces=decision.overwrite,
            )
        on_disk = local_file(dst_store) if dst_store is not None else None
        if on_disk is not None and entry.mtime_ns is not None:
            # a store on the local disk keeps no metadata: its file keeps the time itself, as download_tree's do
            os.utime(on_disk(self.dst_path(rel)), ns=(time.time_ns(), entry.mtime_ns))

    def remove_partial(self, rel: str) -> None:
        """Remove what a failed, non-atomic write of a new file left at the destination (so a re-run redoes it)."""
        path = self.dst_path(rel)
        try:
            if self.dst.store is None:
                os.unlink(path)
            else:
                self.dst.store.delete(path, missing_ok=True)
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 -- reported, never hides the file's own error
            log.warning("could not remove the partial file %s after a failure: %s", path, exc)

    def delete(self, rel: str, size: int) -> FileOutcome | None:
        """Delete the destination file *rel* (``delete=True``), between ``pre_delete`` and ``post_delete``.

        Never raises: the error (a refusal in ``pre_delete`` too) is in the outcome.
        """
        if self.halt.is_set():
            return None
        with contextlib.ExitStack() as stack:
            for lock in self._locks:
                stack.enter_context(lock)
            return self._delete(rel, size)

    def _delete(self, rel: str, size: int) -> FileOutcome:
        path = self.dst_path(rel)
        store = self.dst.store
        dispatch = self.dispatch
        if dispatch.pre_delete is None and not dispatch.post_delete:  # no plugin looks at deletions
            try:
                self._remove(store, path)
            except BaseException as exc:  # noqa: BLE001 -- the outcome carries it
                return FileOutcome(rel, "failed", size=size, reason="delete", error=exc)
            return FileOutcome(rel, "deleted", size=size, reason="not in source")
        context = DeleteContext(Endpoint(store, path), size=size, batch=self.batch)
        error: BaseException | None = None
        try:
            if dispatch.pre_delete is not None:
                try:
                    dispatch.pre_delete(context=context)
                except BaseException as exc:
                    exc.add_note(f"in pre_delete of {context.describe()}: nothing was deleted")
                    raise
            self._remove(store, path)
        except BaseException as exc:  # noqa: BLE001 -- the outcome carries it
            error = exc
        final = call_each(
            "post_delete", dispatch.post_delete, {"context": context, "error": error}, error, context.describe
        )
        if final is None:
            outcome = FileOutcome(rel, "deleted", size=size, reason="not in source")
        else:
            if error is None:  # a post_delete failed a deletion that happened
                final.add_note(f"{context.describe()}: the file was deleted; only its post_delete failed")
            outcome = FileOutcome(rel, "failed", size=size, reason="delete", error=final)
        outcome.transfer_ids = (context.id,)  # the audit's batch record lists the deletion's record too
        return outcome

    @staticmethod
    def _remove(store: Store | None, path: str) -> None:
        if store is None:
            os.unlink(path)
        else:
            store.delete(path, missing_ok=True)
