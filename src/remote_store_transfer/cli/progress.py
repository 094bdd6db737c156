"""The command line's plugins: a call recorder and a rich progress bar, both driven by hooks.

The CLI registers them in the process-wide plugin manager for the duration
of one command, like any other plugin; the core knows nothing about them.

* :class:`CallRecorder` (``pre_transfer`` / ``post_transfer`` only, so the
  core keeps its fast path) remembers the last call's context: the bytes
  moved for the summary line and the JSON output.
* :class:`SourceSize` hands the source size the CLI looked up to the call
  (``context.size``), so that a source that ends early fails the command
  (exit code 6) instead of leaving a shorter file.
* :class:`ProgressBar` draws a bar with bytes, percentage, rate and ETA when
  the size is known, and a spinner with bytes and rate when it is not. The
  CLI registers it only when stderr is a terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from remote_store_transfer.cli.report import format_bytes
from remote_store_transfer.plugin import hookimpl

if TYPE_CHECKING:
    from remote_store_transfer.context import TransferContext

__all__ = ["BinarySpeedColumn", "CallRecorder", "PercentColumn", "ProgressBar", "SourceSize", "stderr_console"]

_STATE = "cli.progress"


def stderr_console() -> Console:
    """A rich console on stderr; ``is_terminal`` tells whether a bar may be drawn."""
    return Console(stderr=True)


class BinarySpeedColumn(ProgressColumn):
    """The transfer rate in binary units (``45.4 MiB/s``), like the byte counts beside it."""

    def render(self, task: Task) -> Text:
        """``<rate>/s``, or ``?`` before the first estimate."""
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{format_bytes(speed)}/s", style="progress.data.speed")


class PercentColumn(TaskProgressColumn):
    """The percentage; ``100%`` for a task of size 0 that ended well (rich shows ``0%``: 0 of 0 is no fraction).

    A task ended well when it was updated with the field ``done=True``.
    """

    def render(self, task: Task) -> Text:
        """``100%`` for an empty task done, else rich's percentage."""
        if task.total == 0 and task.fields.get("done"):
            return Text("100%", style="progress.percentage")
        return super().render(task)


class CallRecorder:
    """Remembers the context of the last call (``last``), for the CLI's summary and JSON."""

    def __init__(self) -> None:
        self.last: TransferContext | None = None

    @hookimpl(tryfirst=True)
    def pre_transfer(self, context: TransferContext) -> None:
        """Remember *context* before any other plugin may abort the call."""
        self.last = context

    def reset(self) -> None:
        """Forget the last call (before the next operation)."""
        self.last = None

    @property
    def bytes_transferred(self) -> int:
        """Bytes moved by the last call, 0 when none began."""
        return 0 if self.last is None else self.last.bytes_transferred


class SourceSize:
    """Gives the next call the source size the CLI looked up (:meth:`expect`), as ``context.size``.

    The CLI looks the size of a download's or a copy's source up once per
    command (``Session.size_of``: it also sizes the bar). With it known, the
    core raises ``IncompleteTransferError`` if the source ends early: an SFTP
    read whose connection drops can end without an error
    (docs/reliability.md). A size another plugin set (``integrity``) is kept.
    """

    def __init__(self) -> None:
        self._size: int | None = None

    def expect(self, size: int | None) -> None:
        """The source's size for the next call (``None``: unknown)."""
        self._size = size

    @hookimpl(tryfirst=True)
    def pre_transfer(self, context: TransferContext) -> None:
        """Hand the size to the call, unless it already has one (an upload's local file)."""
        if context.size is None:
            context.size = self._size


class ProgressBar:
    """A rich progress bar per call, on *console* (stderr).

    Set :meth:`expect` before each call: the label, and the total when the
    caller knows it (``context.size`` is used for uploads).
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._label = ""
        self._total: int | None = None

    def expect(self, label: str, total: int | None) -> None:
        """The label and (if known) the size in bytes of the next call."""
        self._label = label
        self._total = total

    def _columns(self, known: bool) -> list[ProgressColumn]:
        if known:
            return [
                TextColumn("{task.description}"),
                BarColumn(),
                PercentColumn(),
                DownloadColumn(binary_units=True),
                BinarySpeedColumn(),
                TimeRemainingColumn(),
            ]
        return [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            DownloadColumn(binary_units=True),
            BinarySpeedColumn(),
            TimeElapsedColumn(),
        ]

    @hookimpl(tryfirst=True)
    def pre_transfer(self, context: TransferContext) -> None:
        """Start a bar for this call."""
        total = context.size if context.size is not None else self._total
        progress = Progress(*self._columns(total is not None), console=self.console, transient=False)
        task = progress.add_task(self._label or context.operation, total=total)
        progress.start()
        context.state[_STATE] = (progress, task)

    @hookimpl
    def on_chunk(self, context: TransferContext) -> None:
        """Move the bar to ``context.bytes_transferred``."""
        entry: tuple[Progress, TaskID] | None = context.state.get(_STATE)
        if entry is not None:
            entry[0].update(entry[1], completed=context.bytes_transferred)

    @hookimpl(trylast=True)
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        """Finish the bar: full on success (the total becomes the bytes moved), left where it stopped on failure."""
        entry: tuple[Progress, TaskID] | None = context.state.pop(_STATE, None)
        if entry is None:
            return
        progress, task = entry
        done = context.bytes_transferred
        if error is None:
            progress.update(task, total=done, completed=done, done=True)
        else:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            progress.update(task, completed=done, description=f"{self._label} [red]{status}")
        progress.stop()
