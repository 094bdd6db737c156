"""The runner: files in flight on an executor, per-file retries, bandwidth, fail-fast and interrupts.

It knows nothing of stores or plans: it takes an iterator whose items are
either a finished :class:`~remote_store_transfer.batch.FileOutcome` (a
file the planner skipped) or a task (a callable that moves one file and
returns its outcome, or ``None`` when it did not start), and it

* keeps at most ``max_workers`` tasks in flight, pulling the next item only
  when one ends (the listing is consumed as it comes; pending files wait in
  the iterator, never in an unbounded queue);
* records each outcome in the :class:`~remote_store_transfer.batch.TreeResult`
  and calls ``on_file`` in the caller's thread;
* stops starting files after a failure (``fail_fast``), and on an interrupt
  (``KeyboardInterrupt`` in the caller, from ``on_file``, or as a task's
  outcome) also tells the tasks in flight to abort (:attr:`Runner.cancel`),
  waits for them, and raises ``KeyboardInterrupt``.

:func:`retrying` and :class:`Bandwidth` are the per-file pieces the tasks use.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from remote_store import (
    AlreadyExists,
    BackendUnavailable,
    CapabilityNotSupported,
    InvalidPath,
    NotFound,
    PermissionDenied,
)

from remote_store_transfer.batch import FileOutcome
from remote_store_transfer.errors import IncompleteTransferError, IntegrityError, TransferDenied

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from remote_store_transfer.batch import TreeResult

__all__ = [
    "NEVER_RETRIED",
    "RETRIED",
    "Bandwidth",
    "Runner",
    "Task",
    "is_process_executor",
    "is_transient",
    "retrying",
]

T = TypeVar("T")


class Task(NamedTuple):
    """One file's work for the runner: its relative path, and a call that returns its outcome.

    The call returns ``None`` when the file did not start (the tree was
    halted meanwhile). It runs on the executor; if it raises there (a worker
    process died, a payload did not pickle), the file fails with that error.
    """

    path: str
    call: Callable[[], FileOutcome | None]


RETRIED: tuple[type[BaseException], ...] = (
    BackendUnavailable,
    ConnectionError,
    TimeoutError,
    EOFError,
    IncompleteTransferError,
)
"""Transient errors: a file that fails with one of these is tried again (``retries`` times at most)."""

NEVER_RETRIED: tuple[type[BaseException], ...] = (
    NotFound,
    AlreadyExists,
    CapabilityNotSupported,
    PermissionDenied,
    InvalidPath,
    TransferDenied,
    IntegrityError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
)
"""Errors never retried, even when they also count as transient (a store may subclass both)."""

BACKOFF_BASE = 0.2
"""Seconds before the first retry; each retry doubles it (before jitter)."""
BACKOFF_MAX = 10.0
"""The longest wait between two tries, in seconds."""


def is_process_executor(executor: object) -> bool:
    """``True`` for executors whose tasks run in other processes: ``ProcessPoolExecutor``, Dask's client or executor."""
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415 -- cheap, stdlib

    if isinstance(executor, ProcessPoolExecutor):
        return True
    module = type(executor).__module__
    return module.startswith("distributed") and type(executor).__name__ in ("Client", "ClientExecutor")


def is_transient(exc: BaseException) -> bool:
    """``True`` when *exc* is worth another try (see :data:`RETRIED` and :data:`NEVER_RETRIED`)."""
    return isinstance(exc, RETRIED) and not isinstance(exc, NEVER_RETRIED)


def backoff(attempt: int) -> float:
    """Seconds to wait before try *attempt* + 1: exponential, with full jitter."""
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1)))


def retrying(call: Callable[[int], T], retries: int, cancel: threading.Event) -> T:
    """``call(attempt)`` for attempt 1, 2, ...: again after a transient error, at most *retries* more times.

    The wait between tries (:func:`backoff`) ends early when *cancel* is set;
    then the last error is raised.
    """
    attempt = 1
    while True:
        try:
            return call(attempt)
        except BaseException as exc:
            if attempt > retries or not is_transient(exc) or cancel.is_set():
                raise
            exc.add_note(f"try {attempt} of {retries + 1} failed; retrying")
            if cancel.wait(backoff(attempt)):
                raise
            attempt += 1


class Bandwidth:
    """A rate limit shared by every file of a tree: :meth:`take` waits until *nbytes* may pass.

    Each chunk reserves the next ``nbytes / rate`` seconds of a shared
    timeline and waits until its slot has passed, so the bytes that went
    through over any stretch of time stay within ``rate`` per second (plus
    one chunk).
    """

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def take(self, nbytes: int, cancel: threading.Event) -> None:
        """Account for *nbytes* that just went through; wait as long as the rate requires (or until *cancel*)."""
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + nbytes / self.rate
            wait_for = self._next - now
        if wait_for > 0:
            cancel.wait(wait_for)


class Runner:
    """Runs a tree's tasks on an executor; see the module docs.

    Args:
        max_workers: At most this many tasks in flight.
        executor: Where tasks run; ``None`` makes a thread pool of
            *max_workers* threads, shut down by :meth:`run`. A given executor
            is never shut down.
        on_file: Called with each outcome, in the caller's thread.
        fail_fast: Start no new task after the first failure.
        in_process: The executor runs tasks in this process (threads): each
            runs in a copy of the caller's ``contextvars`` context, so that a
            ``capture()`` block around the tree sees every file. ``False`` for
            executors whose tasks travel to other processes.
    """

    def __init__(
        self,
        *,
        max_workers: int,
        executor: Executor | None,
        on_file: Callable[[FileOutcome], None] | None,
        fail_fast: bool,
        in_process: bool = True,
    ) -> None:
        self.max_workers = max_workers
        self.in_process = in_process
        self.executor = executor
        self.on_file = on_file
        self.fail_fast = fail_fast
        self.cancel = threading.Event()
        """Set on an interrupt: tasks in flight abort at their next chunk; queued tasks do not start."""
        self.halt = threading.Event()
        """Set when no new task may start (a fail-fast failure, or :attr:`cancel`)."""
        self.interrupted: BaseException | None = None

    def run(self, items: Iterable[FileOutcome | Task], result: TreeResult) -> None:
        """Run every task of *items* and record every outcome in *result*.

        Raises:
            KeyboardInterrupt: The tree was interrupted; every task in flight has ended.
            Any exception from *items* or ``on_file``, once every task in flight has ended.
        """
        own = self.executor is None
        executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="rst-tree") if own else self.executor
        assert executor is not None
        pending: dict[Future[FileOutcome | None], str] = {}
        try:
            for item in items:
                if isinstance(item, FileOutcome):
                    self._record(item, result)
                else:
                    while len(pending) >= self.max_workers and not self.halt.is_set():
                        self._collect(pending, result)
                    if self.halt.is_set():
                        break
                    pending[self._submit(executor, item)] = item.path
            while pending:
                self._collect(pending, result)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and self.interrupted is None:
                self.interrupted = exc
            self.halt.set()
            self.cancel.set()
            self._drain(pending, result)
            raise
        finally:
            if own:
                executor.shutdown(wait=True)
        if self.interrupted is not None:
            raise KeyboardInterrupt("tree interrupted") from self.interrupted

    def _submit(self, executor: Executor, task: Task) -> Future[FileOutcome | None]:
        if self.in_process:  # in a copy of the caller's context: a capture() around the tree sees the file
            return executor.submit(contextvars.copy_context().run, task.call)
        return executor.submit(task.call)

    def _collect(self, pending: dict[Future[FileOutcome | None], str], result: TreeResult) -> None:
        """Wait for at least one task to end; record what ended and take it out of *pending*."""
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            self._record(_outcome(future, pending.pop(future)), result)
        if self.halt.is_set():  # fail-fast: what has not started never will
            for future in pending:
                future.cancel()

    def _drain(self, pending: dict[Future[FileOutcome | None], str], result: TreeResult) -> None:
        """Wait for every task in flight after an interrupt or error; record outcomes, never raise."""
        for future in pending:  # what has not started never will (worker processes cannot see self.halt)
            future.cancel()
        while pending:
            try:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:  # a second Ctrl-C: keep waiting for the tasks to end
                continue
            for future in done:
                outcome = _outcome(future, pending.pop(future))
                if outcome is not None:
                    result.add(outcome)
                    if self.on_file is not None:
                        with contextlib.suppress(BaseException):  # the first error is what the caller gets
                            self.on_file(outcome)

    def _record(self, outcome: FileOutcome | None, result: TreeResult) -> None:
        """Add *outcome* to *result*, note a failure or an interrupt, and call ``on_file``."""
        if outcome is None:  # the task did not start
            return
        result.add(outcome)
        if outcome.status == "failed":
            if isinstance(outcome.error, KeyboardInterrupt):
                if self.interrupted is None:
                    self.interrupted = outcome.error
                self.cancel.set()
                self.halt.set()
            elif self.fail_fast:
                self.halt.set()
        if self.on_file is not None:
            self.on_file(outcome)


def _outcome(future: Future[FileOutcome | None], path: str) -> FileOutcome | None:
    """The outcome of a finished task (``None``: cancelled before it started); one that raised fails its file."""
    if future.cancelled():
        return None
    try:
        return future.result()
    except BaseException as exc:  # noqa: BLE001 -- a dead worker process, a payload that did not pickle...
        exc.add_note(f"the file {path!r} could not run on the executor")
        return FileOutcome(path, "failed", error=exc)
