"""One transfer command's session, for single files and folders alike.

Its shared options, its stores, the CLI's own plugins it registers for a
block, whether it draws on the terminal, how it captures an error
(:func:`destination_error`, ``Stores.unreachable``), and how it reports a
single file's outcome.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import click

from remote_store_transfer import plugin_manager
from remote_store_transfer.cli.progress import CallRecorder, ProgressBar, SourceSize, stderr_console
from remote_store_transfer.cli.report import PROG, DestinationError, Outcome, error_where, print_error
from remote_store_transfer.cli.stores import CONNECT_TIMEOUT, Location, Stores

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from remote_store import Store

__all__ = ["OPTION_NAMES", "Options", "Session", "destination_error"]


@dataclass(frozen=True)
class Options:
    """The options every transfer command shares (what :func:`_bundled` hands it as ``opts``).

    Attributes:
        config: ``--config`` (or ``None``).
        quiet: ``--quiet``: no bar, no summary line.
        as_json: ``--json``: one JSON object per operation on stdout.
        debug: ``--debug``: print tracebacks.
        connect_timeout: ``--connect-timeout``: seconds per connection attempt to an S3 or SFTP store.
    """

    config: str | None = None
    quiet: bool = False
    as_json: bool = False
    debug: bool = False
    connect_timeout: float = CONNECT_TIMEOUT


OPTION_NAMES = tuple(field.name for field in fields(Options))


class Session:
    """What one transfer command needs: its options, its stores and its plugins.

    Args:
        opts: The shared options.
        data_on_stdout: stdout carries the data (``download SRC -``): the summary line and JSON go to stderr.

    Attributes:
        console: The console of the displays (stderr).
        draws: Whether a display is drawn: stderr is a terminal that can draw, and no ``--quiet``.
    """

    def __init__(self, opts: Options, *, data_on_stdout: bool = False) -> None:
        self.stores = Stores(opts.config, connect_timeout=opts.connect_timeout)
        self._names: list[str] = []  # the stores this command asked for, in order
        self._unreachable: BaseException | None = None  # the size lookup could not reach the source
        self.quiet = quiet = opts.quiet
        self.as_json = opts.as_json
        self.debug = opts.debug
        self.data_on_stdout = data_on_stdout
        self.recorder = CallRecorder()
        self.source_size = SourceSize()
        self.console = console = stderr_console()
        self.draws = console.is_terminal and not console.is_dumb_terminal and not quiet
        self.bar = ProgressBar(console) if self.draws else None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stores.close()

    @contextmanager
    def registered(self, *plugins: object | None) -> Iterator[None]:
        """Register the CLI's own *plugins* (``None`` ones left out) in the process-wide manager for the block.

        Each under ``cli-<type>-<id>``: unique, so two sessions of one process never clash.
        """
        pm = plugin_manager()
        mine = [plugin for plugin in plugins if plugin is not None]
        for plugin in mine:
            pm.register(plugin, name=f"cli-{type(plugin).__name__.lower()}-{id(plugin):x}")
        try:
            yield
        finally:
            for plugin in mine:
                pm.unregister(plugin)

    def captured(self, error: BaseException) -> BaseException:
        """*error* as the command reports it: a store that could not be reached names its endpoint."""
        return self.stores.unreachable(error, self._names)

    def store(self, location: Location) -> Store:
        """The store of a ``NAME:PATH`` location (raises :class:`StoreLookupError`)."""
        assert location.store is not None, location
        store = self.stores.get(location.store, location.text)
        if location.store not in self._names:
            self._names.append(location.store)
        return store

    def size_of(self, store: Store, path: str) -> int | None:
        """The size of the source *path*: one metadata call (``None`` if unknown or on error).

        It sizes the bar and lets the core tell a source that ends early from a complete one.
        """
        from remote_store import BackendUnavailable  # noqa: PLC0415 -- keep the top short

        try:
            return store.get_file_info(path).size
        except BackendUnavailable as exc:  # the call would only wait as long again: run() reports this one
            self._unreachable = exc
            return None
        except Exception:  # noqa: BLE001 -- the transfer itself will report the real error
            return None

    def _reachable_or_raise(self) -> None:
        """Raise the error of the size lookup that could not reach its store (once)."""
        error, self._unreachable = self._unreachable, None
        if error is not None:
            raise error

    def run(
        self,
        operation: str,
        source: str,
        destination: str,
        call: Callable[[], None],
        *,
        total: int | None = None,
        label: str = "",
        partial: str | None = None,
        classify: Callable[[BaseException], BaseException] | None = None,
    ) -> Outcome:
        """Run one operation with the plugins registered; report it; return its outcome.

        *total* is the source's size when the caller looked it up
        (:meth:`size_of`): it sizes the bar and becomes ``context.size``.
        Errors are reported (one line on stderr, the traceback with ``--debug``);
        ``KeyboardInterrupt`` is caught too (exit code 130). *partial* is the
        destination of a non-atomic write (named after a failure: it may hold
        a partial file); *classify* turns a destination's error into a
        :class:`DestinationError`.
        """
        outcome = Outcome(operation, source, destination)
        self.recorder.reset()
        self.source_size.expect(total)
        if self.bar is not None:
            self.bar.expect(label or operation, total)
        started = time.perf_counter()
        try:
            self._reachable_or_raise()
            with self.registered(self.recorder, self.source_size, self.bar):
                call()
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- reported below, with its exit code
            outcome.error = self.captured(classify(exc) if classify is not None and isinstance(exc, Exception) else exc)
        outcome.seconds = time.perf_counter() - started
        outcome.bytes = self.recorder.bytes_transferred
        if partial is not None and outcome.error is not None and _may_leave_partial(outcome):
            outcome.partial = partial
        self.report(outcome)
        return outcome

    def report(self, outcome: Outcome) -> None:
        """Print *outcome*: the JSON object or summary line on stdout (stderr with ``-``), the error line on stderr."""
        if self.as_json:
            click.echo(outcome.as_json(), err=self.data_on_stdout)
        elif outcome.ok and not self.quiet:
            click.echo(outcome.as_line(), err=self.data_on_stdout)
        error = outcome.error
        if error is None:
            return
        if isinstance(error, KeyboardInterrupt):
            click.echo(f"{PROG}: interrupted: {outcome.operation} {outcome.source} -> {outcome.destination}", err=True)
            self._report_partial(outcome)
            return
        where = error_where(error, outcome.source, outcome.destination)
        print_error(f"{outcome.operation} {where}", error, debug=self.debug)
        self._report_partial(outcome)

    @staticmethod
    def _report_partial(outcome: Outcome) -> None:
        if outcome.partial is not None:
            click.echo(
                f"{PROG}: error: {outcome.operation}: the partial file {outcome.partial} may be left behind "
                "(written with --no-atomic or into a store that cannot write atomically)",
                err=True,
            )


def _may_leave_partial(outcome: Outcome) -> bool:
    """Whether a failed non-atomic write may have left a partial destination: bytes moved, or Ctrl-C."""
    from remote_store import AlreadyExists  # noqa: PLC0415 -- keep the top short

    error = outcome.error
    if isinstance(error, AlreadyExists | FileExistsError | DestinationError):
        return False
    return outcome.bytes > 0 or isinstance(error, KeyboardInterrupt)


def destination_error(
    error: BaseException,
    destination: str,
    *,
    local: str | None = None,
    folder: bool = False,
    not_found: bool = False,
    denied: bool = False,
    pipe: bool = False,
) -> BaseException:
    """*error* as a :class:`DestinationError` naming *destination* when it is the destination's (exit 7), else *error*.

    What is the destination's, as the caller knows its ends:

    - an OS error on the *local* path written (absolute; its temp file beside it; with *folder*, *local* is the
      tree's root and every path under it counts), but ``FileExistsError`` for *destination* itself keeps its
      own exit code (4: give --overwrite);
    - with *not_found*, a store's ``NotFound`` (no such bucket or container: the source was already found or read);
    - with *denied*, a store's ``PermissionDenied`` raised while the data moved (the destination is the only store
      of the call: an upload; a plugin's denial in ``pre_transfer`` keeps its own code, 5);
    - with *pipe*, a ``BrokenPipeError`` (the reader of stdout went away).
    """
    from remote_store import NotFound, PermissionDenied  # noqa: PLC0415 -- keep the top short

    if local is not None and isinstance(error, OSError) and isinstance(error.filename, str):
        filename = os.path.abspath(error.filename)
        if folder:
            inside = filename == local or filename.startswith(local.rstrip(os.sep) + os.sep)
        else:
            inside = filename == local or os.path.dirname(filename) == os.path.dirname(local)
        if inside and not (isinstance(error, FileExistsError) and filename == destination):
            return DestinationError(destination, error)
    if not_found and isinstance(error, NotFound):
        return DestinationError(destination, error)
    moving = any(note.startswith("during ") for note in getattr(error, "__notes__", ()))
    if denied and moving and isinstance(error, PermissionDenied):
        return DestinationError(destination, error)
    if pipe and isinstance(error, BrokenPipeError):
        return DestinationError(destination, error)
    return error
