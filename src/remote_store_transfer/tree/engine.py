"""A tree call from start to end: check the options, frame it with the batch hooks, walk, plan, run, delete.

:func:`run_tree` is what ``upload_tree``, ``download_tree`` and
``transfer_tree`` (module functions and ``TransferManager`` methods) call.
Each file goes through the single-file core (:mod:`remote_store_transfer.streaming`)
with its own context and every plugin hook; this module only decides which
files go, in what order, and what happens around them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import posixpath
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from remote_store import NotFound

from remote_store_transfer.batch import Batch, FileOutcome, TreeOperation, TreeResult
from remote_store_transfer.endpoint import Endpoint
from remote_store_transfer.errors import ContainerNotFound, DeleteLimitError, DeletionsRefused, TreeOverlapError
from remote_store_transfer.locations import container_name, physical, same_backend
from remote_store_transfer.plugin.calling import call_each, implementations
from remote_store_transfer.tree.mover import Mover
from remote_store_transfer.tree.plan import decide, delete_limit, keeps_mtime
from remote_store_transfer.tree.runner import Bandwidth, Runner, Task, is_process_executor
from remote_store_transfer.tree.shipping import SharedStore, store_spec
from remote_store_transfer.tree.walk import (
    Entry,
    index_local,
    index_store,
    walk_local,
    walk_store,
)
from remote_store_transfer.tree.worker import BatchSpec, plugin_spec, run_delete, run_file

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator

    from remote_store import Store

    from remote_store_transfer.plugin.manager import TransferPluginManager
    from remote_store_transfer.tree.options import TreeOptions

__all__ = ["run_tree"]

log = logging.getLogger("remote_store_transfer")


def _inside(inner: str, outer: str, sep: str) -> bool:
    return inner == outer or not outer or inner.startswith(outer.rstrip(sep) + sep)


def _check_overlap(src: Endpoint, dst: Endpoint) -> None:
    """Refuse a tree copied into itself, into its own subtree, or onto its parent (``TreeOverlapError``).

    Compares physical locations (:func:`physical`): two backend objects on one bucket or server are one place.
    """
    a, b = physical(src.store, src.path), physical(dst.store, dst.path)
    if a is None or b is None:
        return
    place = a.same_place(b)
    if place is None:  # a kind that names no place (memory): the same place only through the same backend
        assert src.store is not None
        assert dst.store is not None
        place = same_backend(src.store, dst.store)
    if place and (_inside(a.path, b.path, a.sep) or _inside(b.path, a.path, a.sep)):
        raise TreeOverlapError(src.describe(), dst.describe())


class _Tree:
    """One tree call's moving parts (built by :func:`run_tree`)."""

    def __init__(
        self,
        pm: TransferPluginManager,
        batch: Batch,
        options: TreeOptions,
        src: Endpoint,
        dst: Endpoint,
        runner: Runner,
    ) -> None:
        self.batch = batch
        self.options = options
        self.src, self.dst = src, dst
        self.runner = runner
        self.index: dict[str, Entry] = {}
        self.dst_files = 0
        """The destination files the filters take (what a percentage ``max_delete`` is of)."""
        self.seen = 0
        """Source entries the walk yielded (taken by the filters)."""
        self.keeps_mtime = keeps_mtime(dst.store)
        self.src_keeps_mtime = keeps_mtime(src.store)
        self.bandwidth = Bandwidth(options.max_bandwidth) if options.max_bandwidth else None
        self.src_shared = SharedStore(src.store)
        same = dst.store is not None and dst.store is src.store
        self.dst_shared = self.src_shared if same else SharedStore(dst.store)
        self.folders: set[str] = set()
        """The relative folders of the files that ran in worker processes (for :meth:`sweep`)."""
        self.spec: BatchSpec | None = None
        """Set when the files run in worker processes: what travels with each of them."""
        self.mover = Mover(
            pm.dispatch,
            batch,
            self.src_shared,
            src.path,
            self.dst_shared,
            dst.path,
            options,
            keeps_mtime=self.keeps_mtime,
            progress=self.progress,
            cancel=runner.cancel,
            halt=runner.halt,
        )

    def close(self) -> None:
        """Close the per-thread stores opened for this tree."""
        self.src_shared.close()
        if self.dst_shared is not self.src_shared:
            self.dst_shared.close()

    def ship(self, pm: TransferPluginManager) -> None:
        """Make the :class:`BatchSpec` that sends files to worker processes.

        Raises:
            CannotTravel: A store, setting or plugin cannot travel (before any file moves).
        """
        batch, src, dst = self.batch, self.src, self.dst
        self.spec = BatchSpec(
            batch.id,
            batch.operation,
            store_spec(src.store, "source") if src.store is not None else None,
            src.path if src.store is not None else os.path.abspath(src.path),  # a worker has its own cwd
            store_spec(dst.store, "destination") if dst.store is not None else None,
            dst.path if dst.store is not None else os.path.abspath(dst.path),
            batch.options,
            self.keeps_mtime,
            plugin_spec(pm, global_manager=pm.process_wide),
        )
        batch.remote = True

    def ended(self, outcome: FileOutcome) -> None:
        """Every outcome, in the caller's thread: note its tries; report a remote file's bytes as progress."""
        self.batch.transfer_ids.extend(outcome.transfer_ids)
        if self.spec is not None and self.dst.store is None and outcome.status in ("transferred", "failed"):
            self.folders.add(posixpath.dirname(outcome.path))
        on_progress = self.options.on_progress
        if self.spec is not None and on_progress is not None and outcome.bytes:
            on_progress(outcome.bytes)
        on_file = self.options.on_file
        if on_file is not None:
            on_file(outcome)

    def sweep(self) -> None:
        """Remove the temp files of this tree's atomic downloads that a dead worker process left behind.

        A worker killed mid-file never reaches its own clean-up; Dask reruns the
        file elsewhere, under another temp name. Once every file has ended,
        any temp file that carries this tree's tag is an orphan. Only the
        folders this tree's files went to are looked at.
        """
        if self.spec is None or self.dst.store is not None or not self.folders:
            return
        suffix = f".{self.batch.temp_tag}."
        for folder in sorted(self.folders):
            path = os.path.join(self.dst.path, *folder.split("/")) if folder else self.dst.path
            try:
                with os.scandir(path) as entries:
                    orphans = [e.path for e in entries if e.name.startswith(".") and suffix in e.name]
            except OSError:
                continue
            for orphan in orphans:
                if orphan.endswith(".part"):
                    with contextlib.suppress(OSError):
                        os.unlink(orphan)
                        log.info("removed %s, the temp file of a download whose worker process died", orphan)

    # -- walk and plan

    def walk(self) -> Iterator[Entry]:
        taken = self.options.filter
        if self.src.store is None:
            return walk_local(self.src.path, taken, follow_symlinks=self.options.follow_symlinks)
        listing = walk_store(self.src.store, self.src.path, taken)
        lock = self.src_shared.lock
        return listing if lock is None else _locked(listing, lock)

    def load_index(self) -> None:
        """List the destination once (instead of one existence check per file)."""
        if self.dst.store is None:
            self.index = index_local(self.dst.path)
        else:
            self.index = index_store(self.dst.store, self.dst.path)
        taken = self.options.filter
        self.dst_files = sum(1 for rel, entry in self.index.items() if entry.skip is None and taken(rel))

    def items(self) -> Iterator[FileOutcome | Task]:
        """The source listing, planned file by file: skipped outcomes, and tasks for the runner."""
        options, batch = self.options, self.batch
        planned_files = planned_bytes = 0
        try:
            for entry in self.walk():
                self.seen += 1
                dst = self.index.pop(entry.path, None)
                if entry.error is not None:
                    yield FileOutcome(entry.path, "failed", error=entry.error, dry_run=options.dry_run)
                    continue
                if entry.skip is not None:
                    yield FileOutcome(entry.path, "skipped", reason=entry.skip, dry_run=options.dry_run)
                    continue
                decision = decide(
                    entry,
                    dst,
                    options.update,
                    checksum=options.checksum,
                    modify_window=options.modify_window,
                    src_keeps_mtime=self.src_keeps_mtime,
                    dst_keeps_mtime=self.keeps_mtime,
                )
                if decision.action == "skip":
                    yield FileOutcome(
                        entry.path, "skipped", size=entry.size, reason=decision.reason, dry_run=options.dry_run
                    )
                    continue
                planned_files += 1
                planned_bytes += entry.size
                if self.spec is not None:
                    yield Task(entry.path, functools.partial(run_file, self.spec, entry, decision, dst))
                else:
                    yield Task(entry.path, functools.partial(self.mover.task, entry, decision, dst))
            if self.seen == 0 and self.src.store is not None:
                _refuse_missing_container(self.src.store, self.src.describe())
        except Exception as exc:  # noqa: BLE001 -- the listing itself failed: the tree is incomplete (and nothing is deleted)
            exc.add_note(f"while listing {self.src.describe()}")
            yield FileOutcome("", "failed", error=exc, dry_run=options.dry_run)
            return
        batch.planned_files, batch.planned_bytes = planned_files, planned_bytes
        batch.listing_complete = True

    def progress(self, nbytes: int) -> None:
        """Every chunk of every file: the bandwidth limit, the caller's ``on_progress``, the interrupt."""
        if self.bandwidth is not None:
            self.bandwidth.take(nbytes, self.runner.cancel)
        on_progress = self.options.on_progress
        if on_progress is not None:
            on_progress(nbytes)
        if self.runner.cancel.is_set():
            raise KeyboardInterrupt(f"{self.batch.operation} interrupted")

    # -- deletions (after a clean run)

    def deletions(self) -> Iterator[FileOutcome | Task]:
        """The destination files the source does not have (and the filters take): outcomes or delete tasks.

        A source that held no file at all deletes nothing: an empty or mistyped
        source would otherwise wipe the whole destination. That is a failure
        under the empty path ``""``.
        """
        taken = self.options.filter
        doomed = [(rel, entry) for rel, entry in sorted(self.index.items()) if entry.skip is None and taken(rel)]
        if doomed and self.seen == 0:
            refusal = DeletionsRefused(
                f"{self.batch.operation}: the source {self.src.describe()} holds no file: refusing to delete the "
                f"{len(doomed)} files under {self.dst.describe()} (an empty or mistyped source would wipe the "
                "destination); delete them directly if that is what you want"
            )
            yield FileOutcome("", "failed", error=refusal, dry_run=self.options.dry_run)
            return
        limit = delete_limit(self.options.max_delete, self.dst_files)
        if limit is not None and len(doomed) > limit:
            assert self.options.max_delete is not None
            error = DeleteLimitError(self.dst.describe(), len(doomed), limit, self.options.max_delete, self.dst_files)
            yield FileOutcome("", "failed", error=error, dry_run=self.options.dry_run)
            return
        for rel, entry in doomed:
            if self.options.dry_run:
                yield FileOutcome(rel, "deleted", size=entry.size, reason="not in source", dry_run=True)
            else:
                call = self.mover.delete if self.spec is None else functools.partial(run_delete, self.spec)
                yield Task(rel, functools.partial(call, rel, entry.size))


def _refuse_missing_container(store: Store, source: str) -> None:
    """Raise :class:`ContainerNotFound` when *store*'s bucket or container does not exist (an empty listing).

    Asked only after a listing that held no file, since S3 lists a missing bucket
    as empty. Only ``NotFound`` from ``ping()`` counts: another error (a denied
    ``HeadBucket`` where listing is allowed) leaves the source an empty one.
    """
    try:
        store.ping()
    except NotFound as exc:
        raise ContainerNotFound(source, container_name(store)) from exc  # the chain keeps NoSuchBucket
    except Exception:  # noqa: BLE001 -- not a proof that the container is missing
        return


def _locked(items: Iterator[Entry], lock: threading.Lock) -> Iterator[Entry]:
    """*items*, each one taken under *lock* (a listing of a store that the workers use too)."""
    while True:
        with lock:
            item = next(items, None)
        if item is None:
            return
        yield item


def _post_batch(pm: TransferPluginManager, batch: Batch, result: TreeResult, error: BaseException | None) -> None:
    """Call every ``post_batch`` implementation; raise the first error when the tree itself did not fail."""
    batch.error = error
    impls = implementations(pm.hook.post_batch)
    raised = call_each("post_batch", impls, {"batch": batch, "result": result}, error, lambda: _ended(batch, result))
    if raised is not None and raised is not error:
        raise raised


def _ended(batch: Batch, result: TreeResult) -> str:
    return f"{batch.describe()}: {result.summary()}"


def run_tree(
    pm: TransferPluginManager,
    operation: TreeOperation,
    src_store: Store | None,
    src_root: str,
    dst_store: Store | None,
    dst_root: str,
    options: TreeOptions,
) -> TreeResult:
    """Run one tree call (see ``upload_tree``); *src_store* / *dst_store* ``None`` means a local folder."""
    src, dst = Endpoint(src_store, src_root), Endpoint(dst_store, dst_root)
    if src_store is None and not os.path.isdir(src_root):
        os.stat(src_root)  # FileNotFoundError when missing
        raise NotADirectoryError(f"{operation}: the source is not a folder: {src_root}")
    if dst_store is None and os.path.lexists(dst_root) and not os.path.isdir(dst_root):
        raise NotADirectoryError(f"{operation}: the destination is not a folder: {dst_root}")
    _check_overlap(src, dst)
    batch = Batch(operation, src, dst, options.plain())
    remote = is_process_executor(options.executor)
    executor = options.executor
    if remote and not isinstance(executor, Executor):  # a distributed.Client: its concurrent.futures face
        executor = executor.get_executor(pure=False)  # type: ignore[attr-defined] # side effects: never merged
    runner = Runner(
        max_workers=options.max_workers,
        executor=executor,
        on_file=None,
        fail_fast=options.fail_fast,
        in_process=not remote,
    )
    tree = _Tree(pm, batch, options, src, dst, runner)
    if remote:
        tree.ship(pm)  # CannotTravel before anything is listed or moved
    result = TreeResult(dry_run=options.dry_run, batch_id=batch.id)
    if options.dry_run:
        return _dry_run(pm, tree, result)
    error: BaseException | None = None
    try:
        pm.hook.pre_batch(batch=batch)
        tree.load_index()
        runner.on_file = tree.ended
        runner.run(tree.items(), result)
        if options.delete and result.ok:
            runner.run(tree.deletions(), result)
    except BaseException as exc:
        error = exc
        raise
    finally:
        tree.close()
        tree.sweep()
        result.seconds = batch.elapsed()
        _post_batch(pm, batch, result, error)
    return result


def _dry_run(pm: TransferPluginManager, tree: _Tree, result: TreeResult) -> TreeResult:
    """Plan the whole tree (nothing written), hand the plan to ``pre_batch``, then report it."""
    outcomes: list[FileOutcome] = []
    tree.runner.on_file = outcomes.append if tree.options.on_file is not None else None
    error: BaseException | None = None
    began = False  # post_batch runs for a tree whose pre_batch began (planning failed: neither runs)
    try:
        tree.load_index()
        tree.runner.run(tree.items(), result)
        if tree.options.delete and result.ok:
            tree.runner.run(tree.deletions(), result)
        tree.batch.plan = result
        # the plan is known now: the files the checks turned into skips are not planned
        tree.batch.planned_files, tree.batch.planned_bytes = len(result.transferred), result.bytes_transferred
        began = True
        pm.hook.pre_batch(batch=tree.batch)
        on_file = tree.options.on_file
        if on_file is not None:
            for outcome in outcomes:
                on_file(outcome)
    except BaseException as exc:
        error = exc
        raise
    finally:
        tree.close()
        result.seconds = tree.batch.elapsed()
        if began:
            _post_batch(pm, tree.batch, result, error)
    return result
