"""The progress display of a folder command (``-r``, ``sync``): an overall bar and one line per file in flight.

:class:`TreeProgress` is a plugin like the single-file bar: the CLI registers
it in the process-wide plugin manager for one tree call, when stderr is a
terminal. It draws on stderr, with rich:

* the overall row: the bytes moved (of the total once the source listing has
  been read to its end), the rate, the time left, and the files done (``3/10
  files``; before the listing ends ``3 files, listing...``);
* a local source is counted ahead of the transfers (:class:`SourceCounter`,
  a thread of its own): its files and bytes size the bar while the tree's own
  lazy listing is still behind (``3/120+ files, counting...`` while it counts,
  then ``3/120 files``), less the files the tree skips as they are reported;
* one row per file in flight: its relative path and its bytes (of its size
  when known: an upload's).

``pre_batch`` / ``post_batch`` run in the caller's thread; ``pre_transfer``,
``on_chunk`` and ``post_transfer`` run in the tree's worker threads, so
every change goes through rich's own lock (``Progress`` methods) or
:attr:`TreeProgress._lock`. The CLI calls :meth:`TreeProgress.file_done`
from its ``on_file`` callback (the caller's thread).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TYPE_CHECKING

from rich.console import Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from remote_store_transfer.cli.progress import BinarySpeedColumn, PercentColumn
from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.tree.filters import PathFilter
from remote_store_transfer.tree.walk import walk_local

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from remote_store_transfer.batch import Batch, FileOutcome, TreeResult
    from remote_store_transfer.context import TransferContext

__all__ = ["SourceCounter", "TreeProgress", "relative_path"]

_STATE = "cli.tree_progress"
_NAME_WIDTH = 48


def relative_path(path: str, root: str, *, local: bool) -> str:
    """*path* relative to the tree root *root* (the same at both ends of a tree); *path* itself if not below it."""
    if local:
        base = root.rstrip("/" + os.sep)
        if base and path.startswith(base) and path[len(base) : len(base) + 1] in ("/", os.sep):
            return path[len(base) + 1 :]
        return path
    base = root.strip("/")
    if not base:
        return path.lstrip("/")
    path = path.lstrip("/")
    return path[len(base) + 1 :] if path.startswith(base + "/") else path


def _files(n: int) -> str:
    return "file" if n == 1 else "files"


def _shorten(name: str, width: int = _NAME_WIDTH) -> str:
    """*name* cut to *width* characters from the left (the end of a path says most)."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


class _FilesColumn(ProgressColumn):
    """``3/10 files`` once the listing is complete, ``3 files, listing...`` before; failures appended."""

    def __init__(self, owner: TreeProgress) -> None:
        super().__init__()
        self.owner = owner

    def render(self, task: Task) -> Text:
        """The files counter of *owner*."""
        return Text(self.owner.files_text(), style="progress.download")


class TreeProgress:
    """A live display of one tree call on *console* (stderr): see the module docs.

    Args:
        console: Where to draw (a terminal).
        label: The overall row's label (``upload photos``).
    """

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self._lock = threading.Lock()
        self._batch: Batch | None = None
        self._done = 0
        self._failed = 0
        self._total_set = False
        self._counted: tuple[int, int] | None = None  # (files, bytes) the counter found so far
        self._counting = False
        self._skipped = (0, 0)  # (files, bytes) the tree skipped, out of the counted ones
        self.overall = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            PercentColumn(),
            DownloadColumn(binary_units=True),
            BinarySpeedColumn(),
            TimeRemainingColumn(),
            _FilesColumn(self),
            console=console,
        )
        self.files = Progress(
            TextColumn("  {task.description}"),
            PercentColumn(),
            DownloadColumn(binary_units=True),
            console=console,
        )
        self._task = self.overall.add_task(label, total=None)
        self._live: Live | None = None

    # -- what the columns read

    def files_text(self) -> str:
        """The files counter (read by the overall row at each refresh)."""
        batch = self._batch
        with self._lock:
            done, failed = self._done, self._failed
        with self._lock:
            counted, counting, skipped = self._counted, self._counting, self._skipped[0]
        if batch is not None and batch.listing_complete and batch.planned_files is not None:
            text = f"{done}/{batch.planned_files} {_files(batch.planned_files)}"
        elif counted is not None:
            files = max(counted[0] - skipped, done)
            text = f"{done}/{files}+ files, counting..." if counting else f"{done}/{files} {_files(files)}"
        else:
            text = f"{done} {_files(done)}, listing..."
        if failed:
            text += f", {failed} failed"
        return text

    # -- the batch (caller's thread)

    @hookimpl
    def pre_batch(self, batch: Batch) -> None:
        """Start the display for *batch* (the first tree call seen; a dry run draws nothing)."""
        if self._batch is not None or batch.dry_run:
            return
        self._batch = batch
        self._live = Live(
            Group(self.overall, self.files),
            console=self.console,
            refresh_per_second=10,
            transient=False,
            # Output on stdout (--json lines) goes above the display only when stdout is this terminal too;
            # redirected to a file or a pipe it must stay there.
            redirect_stdout=sys.stdout.isatty(),
        )
        self._live.start()

    def counted(self, files: int, nbytes: int, *, done: bool) -> None:
        """The source counter's running count (its thread): it sizes the bar until the listing ends."""
        with self._lock:
            self._counted, self._counting = (files, nbytes), not done
        self._set_total()

    def file_done(self, outcome: FileOutcome) -> None:
        """Count one file that ended (the CLI's ``on_file``, in the caller's thread); Ctrl-C's are not counted."""
        if outcome.status == "skipped" and outcome.size is not None:  # counted, but it will not move
            with self._lock:
                self._skipped = (self._skipped[0] + 1, self._skipped[1] + outcome.size)
        if outcome.status == "transferred" or (
            outcome.status == "failed" and not isinstance(outcome.error, KeyboardInterrupt)
        ):
            batch = self._batch
            if batch is not None and batch.remote and outcome.bytes:  # no per-file hooks here: the file's bytes
                self.overall.advance(self._task, outcome.bytes)
            with self._lock:
                if outcome.status == "transferred":
                    self._done += 1
                else:
                    self._failed += 1
                    if outcome.size is not None:  # a file of the plan (not a listing error): it ended too
                        self._done += 1
        self._set_total()

    def _set_total(self) -> None:
        """Size the overall bar: exactly once the listing is complete, from the counter's count before."""
        batch = self._batch
        if self._total_set or batch is None:
            return
        if batch.listing_complete and batch.planned_bytes is not None:
            self._total_set = True
            self.overall.update(self._task, total=batch.planned_bytes)
            return
        with self._lock:
            counted, skipped = self._counted, self._skipped[1]
        if counted is not None:
            completed = self.overall.tasks[0].completed
            self.overall.update(self._task, total=max(counted[1] - skipped, completed))

    @hookimpl(trylast=True)
    def post_batch(self, batch: Batch, result: TreeResult) -> None:
        """Bring the overall row to its final state: full when the tree ended well, else where it stopped.

        Ended well: no file failed, no error (Ctrl-C) and the listing read to its end; an interrupted
        tree keeps its total, so the bar shows how far it got (never 100% for 163 of 303 files).
        """
        if batch is not self._batch:
            return
        self._set_total()
        task = self.overall.tasks[0]
        completed = task.completed  # every byte that moved, failed tries included
        well = not result.failed and batch.error is None and batch.listing_complete
        total = completed if well or task.total is None else max(task.total, completed)
        self.overall.update(self._task, total=total, done=well)

    def stop(self, *, interrupted: bool = False) -> None:
        """Stop drawing (idempotent): the file rows go, the overall row stays on the screen (if bytes moved)."""
        live, self._live = self._live, None
        if live is None:
            return
        if interrupted:
            self.overall.update(self._task, description=f"{self.label} [red]interrupted")
        elif not self.overall.tasks[0].completed and not self._done:
            live.transient = True  # no file moved (all skipped, or none started): the bar says nothing, erase it
        for task in self.files.tasks:
            self._remove(task.id)
        live.update(self.overall, refresh=True)
        live.stop()

    # -- the files (worker threads)

    def _mine(self, context: TransferContext) -> bool:
        return self._batch is not None and context.batch is self._batch and self._live is not None

    @hookimpl
    def pre_transfer(self, context: TransferContext) -> None:
        """Add a row for this file."""
        if not self._mine(context):
            return
        batch = self._batch
        assert batch is not None
        root = batch.source
        rel = relative_path(context.source.path, root.path, local=root.store is None)
        task = self.files.add_task(_shorten(rel), total=context.size)
        context.state[_STATE] = task

    @hookimpl
    def on_chunk(self, context: TransferContext, nbytes: int) -> None:
        """Move the file's row and the overall row."""
        task: TaskID | None = context.state.get(_STATE)
        if task is None:
            return
        with contextlib.suppress(KeyError):  # the row is gone once the display stopped
            self.files.update(task, completed=context.bytes_transferred)
        self.overall.advance(self._task, nbytes)
        self._set_total()

    @hookimpl(trylast=True)
    def post_transfer(self, context: TransferContext) -> None:
        """Drop the file's row (the bytes of a failed try stay counted: they moved, as the summary says)."""
        task: TaskID | None = context.state.pop(_STATE, None)
        if task is not None:
            self._remove(task)

    def _remove(self, task: TaskID) -> None:
        with contextlib.suppress(KeyError):  # already gone (the display stopped)
            self.files.remove_task(task)


class SourceCounter:
    """Counts the files and bytes of a local source in a thread of its own, for the display's total.

    The tree's own listing is lazy: it is read only as workers free up, so
    its total comes at the end of a long run. This first pass walks the same
    folder with the same filter (:func:`~remote_store_transfer.tree.walk.walk_local`,
    :class:`~remote_store_transfer.tree.filters.PathFilter`), keeps only two
    numbers (no listing), reports to *display* every *every* files and at the
    end, and stops at :meth:`stop` (the tree ended or was interrupted).
    """

    def __init__(
        self,
        display: TreeProgress,
        root: str,
        include: Sequence[str],
        exclude: Sequence[str],
        *,
        follow_symlinks: bool,
        every: int = 50,
    ) -> None:
        self.display = display
        self.root = root
        self.taken = PathFilter(include, exclude)
        self.follow_symlinks = follow_symlinks
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._count, name="rst-source-counter", daemon=True)

    def start(self) -> None:
        """Start counting."""
        self._thread.start()

    def stop(self) -> None:
        """Stop counting (idempotent) and wait for the thread: it checks between two entries."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the count ended."""
        self._thread.join(timeout)

    def _count(self) -> None:
        files = nbytes = 0
        try:
            for entry in walk_local(self.root, self.taken, follow_symlinks=self.follow_symlinks):
                if self._stop.is_set():
                    return
                if entry.error is None and entry.skip is None:
                    files, nbytes = files + 1, nbytes + entry.size
                    if files % self.every == 0:
                        self.display.counted(files, nbytes, done=False)
        except OSError:  # the tree reports what is wrong with its source: a count is only a hint
            return
        self.display.counted(files, nbytes, done=True)
