"""The ``remote-store-transfer`` command line (also ``python -m remote_store_transfer``).

Subcommands: ``upload``, ``download``, ``copy`` (the three functions, with
named stores from a remote-store registry TOML; with ``-r``, the three tree
functions), ``sync``, ``plugins``, ``audit`` (:mod:`remote_store_transfer.audit.cli`) and ``demo``. See
``docs/cli.md``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from remote_store_transfer import __version__, download, plugin_manager, transfer, upload
from remote_store_transfer.audit.cli import audit as audit_cli
from remote_store_transfer.cli.progress import CallRecorder, ProgressBar, SourceSize, stderr_console
from remote_store_transfer.cli.report import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    TREE_EXIT_HELP,
    DestinationError,
    Outcome,
    exit_code_for,
    print_error,
)
from remote_store_transfer.cli.stdio import STDIN, STDOUT, stdio_store
from remote_store_transfer.cli.stores import (
    CONNECT_TIMEOUT,
    STORES_ENV,
    Location,
    StoreLookupError,
    Stores,
    atomic_writes,
    parse_location,
)
from remote_store_transfer.cli.tree import Command, TreeArgs, reject_tree_options, run_tree_command, tree_options
from remote_store_transfer.cli.verbosity import configure_logging

if TYPE_CHECKING:
    from remote_store import Store

    from remote_store_transfer.plugin.manager import PluginInfo

__all__ = ["Session", "cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])

_EPILOG = (
    f"Locations: NAME:PATH is PATH in store NAME of the registry TOML given by --config or ${STORES_ENV}; "
    "anything else is a local path (write ./a:b for a local name with a colon). "
    "A store path ending in / (or empty) gets the source's file name.\n\n" + TREE_EXIT_HELP + "\n\n" + EXIT_CODES_HELP
)


class Failed(Exception):
    """A command already reported its error; exit with *code*."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


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


_OPTION_NAMES = tuple(field.name for field in fields(Options))


class Session:
    """What one transfer command needs: its options, its stores and its plugins.

    Args:
        opts: The shared options.
        data_on_stdout: stdout carries the data (``download SRC -``): the summary line and JSON go to stderr.
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
        console = stderr_console()
        self.bar = ProgressBar(console) if console.is_terminal and not console.is_dumb_terminal and not quiet else None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stores.close()

    @contextmanager
    def plugins(self) -> Iterator[None]:
        """Register the recorder, the size lookup (and the bar) in the process-wide manager for the block."""
        pm = plugin_manager()
        mine: list[object] = [self.recorder, self.source_size] + ([self.bar] if self.bar is not None else [])
        for plugin in mine:
            pm.register(plugin, name=f"cli-{type(plugin).__name__.lower()}-{id(plugin):x}")
        try:
            yield
        finally:
            for plugin in mine:
                pm.unregister(plugin)

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
            with self.plugins():
                call()
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- reported below, with its exit code
            outcome.error = classify(exc) if classify is not None and isinstance(exc, Exception) else exc
            outcome.error = self.stores.unreachable(outcome.error, self._names)
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
        from remote_store import AlreadyExists, NotFound  # noqa: PLC0415 -- keep the top short

        if isinstance(error, DestinationError):
            where = outcome.destination
        elif isinstance(error, NotFound | FileNotFoundError):
            where = outcome.source
        elif isinstance(error, AlreadyExists | FileExistsError):
            where = outcome.destination
        else:
            where = f"{outcome.source} -> {outcome.destination}"
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


_VERBOSITY = "remote_store_transfer.verbosity"


def _count_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    """Add this ``-v`` count to the command's (before and after the subcommand) and show the logs it asks for."""
    if value:
        total = int(ctx.meta.get(_VERBOSITY, 0)) + value  # ctx.meta is shared by the group and its subcommand
        ctx.meta[_VERBOSITY] = total
        configure_logging(total)


def _verbose(func: F) -> F:
    """``-v`` / ``--verbose`` (repeatable): log records on stderr, INFO with -v, DEBUG with -vv."""
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        is_eager=True,
        callback=_count_verbose,
        help="Log records on stderr: -v INFO (plugins, remote-store, the logging plugin), -vv DEBUG.",
    )(func)


def _common(*, transfer_options: bool, overwrite: bool = True) -> Callable[[F], F]:
    """The options every subcommand takes (and, for upload/download/copy/sync, the transfer ones)."""

    def decorate(func: F) -> F:
        func = _verbose(func)
        func = click.option("--debug", is_flag=True, help="Print the traceback of an error.")(func)
        func = click.option(
            "--config",
            "config",
            metavar="FILE",
            help=f"Store registry TOML (remote-store RegistryConfig); default ${STORES_ENV}.",
        )(func)
        if transfer_options:
            func = click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="One JSON object per operation on stdout (folders: one per file, then the summary).",
            )(func)
            func = click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")(func)
            func = click.option(
                "--connect-timeout",
                type=click.FloatRange(min=0, min_open=True),
                default=CONNECT_TIMEOUT,
                show_default=True,
                metavar="SECONDS",
                help="Give up one connection attempt to an S3 or SFTP store after SECONDS (unless the registry "
                "sets its own); the backend's retries come on top (see docs/cli.md).",
            )(func)
            func = click.option(
                "--atomic/--no-atomic",
                default=True,
                help="Readers never see a partial file (write_atomic / temp file + rename). On by default where "
                "the destination can do it; --no-atomic writes in place (a failure can leave a partial file).",
            )(func)
            if overwrite:
                func = click.option(
                    "--overwrite", is_flag=True, help="Replace the destination if it exists (single files)."
                )(func)
        return func

    return decorate


def _guarded(func: F) -> F:
    """Turn store-lookup problems and plugin-load failures into one error line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        name = click.get_current_context().command_path.removeprefix(PROG).strip()
        try:
            return func(*args, **kwargs)
        except StoreLookupError as exc:
            print_error(f"{name} {exc.where}" if exc.where else name, exc, debug=debug, with_type=False)
            raise Failed(EXIT_USAGE) from exc
        except KeyboardInterrupt:
            click.echo(f"{PROG}: interrupted: {name}", err=True)
            raise Failed(EXIT_INTERRUPTED) from None
        except (Failed, click.ClickException, click.exceptions.Exit):
            raise
        except Exception as exc:  # a plugin failed to load, a registry backend failed to build, ...
            print_error(name, exc, debug=debug)
            raise Failed(exit_code_for(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _bundled(func: F) -> F:
    """Hand a transfer command its shared options as one :class:`Options` (``opts``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        opts = Options(**{name: kwargs.pop(name) for name in _OPTION_NAMES})
        return func(*args, opts=opts, **kwargs)

    return wrapper  # type: ignore[return-value]


def _usage(message: str) -> NoReturn:
    raise click.UsageError(message)


@click.group(epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name=PROG)
@_verbose
def cli() -> None:
    """Streaming upload, download and copy between local files and remote-store stores, with plugins.

    New here? Run: remote-store-transfer demo
    """


@cli.command("upload", epilog=_EPILOG, short_help="Upload a local file (-r: a folder) to NAME:PATH.")
@click.argument("local", metavar="LOCAL")
@click.argument("remote", metavar="NAME:PATH")
@_common(transfer_options=True)
@tree_options(sync=False)
@_guarded
@_bundled
def upload_cmd(
    local: str,
    remote: str,
    overwrite: bool,
    atomic: bool,
    recursive: bool,
    opts: Options,
    **tree: Any,
) -> None:
    """Upload the local file LOCAL to PATH in store NAME (LOCAL "-": stdin; PATH must then name the file).

    With -r, LOCAL is a folder and PATH a prefix: every file under LOCAL goes
    to the same relative path under PATH; files already there are skipped
    (--update missing: a re-run resumes).
    """
    src, dst = parse_location(local), parse_location(remote)
    if not src.is_local:
        _usage(f"upload: LOCAL must be a local path, got store location {local!r} (use copy)")
    if dst.is_local:
        _usage(f"upload: the destination must be NAME:PATH, got local path {remote!r}")
    if local == "-":
        _refuse_dash_tree("upload", recursive)
        _upload_stdin(
            dst,
            opts,
            overwrite=overwrite,
            atomic=atomic,
        )
        return
    if recursive:
        _tree(
            "upload",
            src,
            dst,
            tree,
            opts,
            overwrite=overwrite,
            atomic=atomic,
        )
        return
    reject_tree_options("upload")
    dst = dst.with_name(os.path.basename(src.path))
    with Session(opts) as session:
        store = session.store(dst)
        atomic = atomic_writes(store, dst.store or "", atomic)
        outcome = session.run(
            "upload",
            os.path.abspath(src.path),
            dst.text,
            lambda: upload(store, src.path, dst.path, overwrite=overwrite, atomic=atomic),
            label=f"upload {os.path.basename(src.path)}",
            partial=None if atomic else dst.text,
            classify=lambda exc: _store_destination_error(exc, dst.text, writer_only=True),
        )
    _finish(outcome)


@cli.command("download", epilog=_EPILOG, short_help="Download NAME:PATH (-r: a prefix) to a local file.")
@click.argument("remote", metavar="NAME:PATH")
@click.argument("local", metavar="LOCAL")
@_common(transfer_options=True)
@tree_options(sync=False)
@_guarded
@_bundled
def download_cmd(
    remote: str,
    local: str,
    overwrite: bool,
    atomic: bool,
    recursive: bool,
    opts: Options,
    **tree: Any,
) -> None:
    """Download PATH of store NAME to the local file LOCAL (into it, if LOCAL is a directory; "-": stdout).

    Missing parent folders of LOCAL are made. The file is written to a temp
    file beside LOCAL and renamed into place (--no-atomic: in place).

    With -r, PATH is a prefix and LOCAL a folder (made if missing): every file
    under PATH goes to the same relative path under LOCAL; files already there
    are skipped (--update missing).
    """
    src, dst = parse_location(remote), parse_location(local)
    if src.is_local:
        _usage(f"download: the source must be NAME:PATH, got local path {remote!r}")
    if not dst.is_local:
        _usage(f"download: LOCAL must be a local path, got store location {local!r} (use copy)")
    if local == "-":
        _refuse_dash_tree("download", recursive)
        _download_stdout(src, opts)
        return
    if recursive:
        _tree(
            "download",
            src,
            dst,
            tree,
            opts,
            overwrite=overwrite,
            atomic=atomic,
        )
        return
    reject_tree_options("download")
    target = dst.path
    if os.path.isdir(target):
        target = os.path.join(target, os.path.basename(src.path.rstrip("/")))
    destination = os.path.abspath(target)

    def call() -> None:
        try:
            os.makedirs(os.path.dirname(destination), exist_ok=True)  # as rclone and the AWS CLI do
        except OSError as exc:
            raise DestinationError(destination, exc) from exc
        download(store, src.path, target, overwrite=overwrite, atomic=atomic)

    with Session(opts) as session:
        store = session.store(src)
        outcome = session.run(
            "download",
            src.text,
            destination,
            call,
            total=session.size_of(store, src.path),
            label=f"download {os.path.basename(src.path)}",
            partial=None if atomic else destination,
            classify=lambda exc: _local_destination_error(exc, destination),
        )
    _finish(outcome)


@cli.command("copy", epilog=_EPILOG, short_help="Copy NAME:PATH (-r: a prefix) to NAME:PATH, store to store.")
@click.argument("source", metavar="NAME:PATH")
@click.argument("destination", metavar="NAME:PATH")
@_common(transfer_options=True)
@tree_options(sync=False)
@_guarded
@_bundled
def copy_cmd(
    source: str,
    destination: str,
    overwrite: bool,
    atomic: bool,
    recursive: bool,
    opts: Options,
    **tree: Any,
) -> None:
    """Stream a file from one store to another (or the same) store: remote to remote, no local copy.

    With -r, both are prefixes: every file under the first goes to the same
    relative path under the second; files already there are skipped (--update
    missing).
    """
    src, dst = parse_location(source), parse_location(destination)
    if src.is_local or dst.is_local:
        local = source if src.is_local else destination
        hint = "upload - NAME:PATH or download NAME:PATH -" if local == "-" else "upload or download"
        _usage(f"copy: both ends must be NAME:PATH, got local path {local!r} (use {hint})")
    if recursive:
        _tree(
            "copy",
            src,
            dst,
            tree,
            opts,
            overwrite=overwrite,
            atomic=atomic,
        )
        return
    reject_tree_options("copy")
    dst = dst.with_name(os.path.basename(src.path.rstrip("/")))
    with Session(opts) as session:
        src_store, dst_store = session.store(src), session.store(dst)
        atomic = atomic_writes(dst_store, dst.store or "", atomic)
        total = session.size_of(src_store, src.path)
        outcome = session.run(
            "copy",
            src.text,
            dst.text,
            lambda: transfer(src_store, src.path, dst_store, dst.path, overwrite=overwrite, atomic=atomic),
            total=total,
            label=f"copy {os.path.basename(src.path)}",
            partial=None if atomic else dst.text,
            # a NotFound after the source was found is the destination's (a missing bucket)
            classify=(lambda exc: _store_destination_error(exc, dst.text)) if total is not None else None,
        )
    _finish(outcome)


def _refuse_dash_tree(command: str, recursive: bool) -> None:
    """``-`` is one stream, never a folder: with ``-r`` it is a usage error."""
    if recursive:
        _usage(f"{command} -r: '-' (stdin or stdout) is one file, not a folder (write ./- for a path named -)")
    reject_tree_options(command)


def _upload_stdin(dst: Location, opts: Options, *, overwrite: bool, atomic: bool) -> None:
    """``upload - NAME:PATH``: stream stdin to the store, as a ``transfer`` from the stdio store (size unknown)."""
    if not dst.path or dst.path.endswith("/"):
        _usage(f"upload: stdin has no file name: give the destination's, as in {dst.text}NAME")
    stdio = stdio_store(sys.stdin.buffer, sys.stdout.buffer)
    with Session(opts) as session:
        store = session.store(dst)
        atomic = atomic_writes(store, dst.store or "", atomic)
        outcome = session.run(
            "upload",
            STDIN,
            dst.text,
            lambda: transfer(stdio, STDIN, store, dst.path, overwrite=overwrite, atomic=atomic),
            label=f"upload {STDIN}",
            partial=None if atomic else dst.text,
            classify=lambda exc: _store_destination_error(exc, dst.text, writer_only=True),
        )
    _finish(outcome)


def _download_stdout(src: Location, opts: Options) -> None:
    """``download NAME:PATH -``: stream the file to stdout (never atomic; the summary and JSON go to stderr)."""
    stdio = stdio_store(sys.stdin.buffer, sys.stdout.buffer)
    with Session(opts, data_on_stdout=True) as session:
        store = session.store(src)
        outcome = session.run(
            "download",
            src.text,
            STDOUT,
            lambda: transfer(store, src.path, stdio, STDOUT),
            total=session.size_of(store, src.path),
            label=f"download {os.path.basename(src.path)}",
            classify=lambda exc: DestinationError(STDOUT, exc) if isinstance(exc, BrokenPipeError) else exc,
        )
    if isinstance(outcome.error, DestinationError) and isinstance(outcome.error.error, BrokenPipeError):
        _silence_stdout()
    _finish(outcome)


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at the null device, so the exit's flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _store_destination_error(exc: BaseException, destination: str, *, writer_only: bool = False) -> BaseException:
    """A store's error on write as a :class:`DestinationError`.

    A ``NotFound`` (no such bucket or container); and, when the destination
    store is the only store of the call (*writer_only*: an upload), a
    ``PermissionDenied`` it raised while the data moved (a plugin's denial in
    ``pre_transfer`` keeps its own code, 5).
    """
    from remote_store import NotFound, PermissionDenied  # noqa: PLC0415 -- keep the top short

    if isinstance(exc, NotFound):
        return DestinationError(destination, exc)
    moving = any(note.startswith("during ") for note in getattr(exc, "__notes__", ()))
    if writer_only and moving and isinstance(exc, PermissionDenied):
        return DestinationError(destination, exc)
    return exc


def _local_destination_error(exc: BaseException, destination: str) -> BaseException:
    """An OS error on the local destination (or its temp file beside it) as a :class:`DestinationError`.

    ``FileExistsError`` keeps its own exit code (4: give --overwrite).
    """
    if not isinstance(exc, OSError) or isinstance(exc, FileExistsError) or not isinstance(exc.filename, str):
        return exc
    filename = os.path.abspath(exc.filename)
    if filename == destination or os.path.dirname(filename) == os.path.dirname(destination):
        return DestinationError(destination, exc)
    return exc


def _finish(outcome: Outcome) -> None:
    if outcome.error is not None:
        raise Failed(outcome.exit_code)


@cli.command(
    "sync", epilog=_EPILOG, short_help="Make DST like SRC: folders or prefixes, local or store, changed files only."
)
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@_common(transfer_options=True, overwrite=False)
@tree_options(sync=True)
@_guarded
@_bundled
def sync_cmd(
    source: str,
    destination: str,
    atomic: bool,
    opts: Options,
    **tree: Any,
) -> None:
    """Copy to DST the files of SRC that DST lacks or holds in another version (--update changed).

    SRC and DST are each a local folder or NAME:PREFIX, not both local:
    local to store uploads, store to local downloads, store to store copies.
    With --delete, the files of DST that SRC lacks are deleted too (DST
    mirrors SRC), and only after a run in which no file failed; files left
    out by --include / --exclude are never deleted.
    """
    if "-" in (source, destination):
        _usage("sync: '-' (stdin or stdout) is one file, not a folder (write ./- for a folder named -)")
    _tree(
        "sync",
        parse_location(source),
        parse_location(destination),
        tree,
        opts,
        overwrite=False,
        atomic=atomic,
    )


def _tree(
    command: Command,
    src: Location,
    dst: Location,
    params: dict[str, Any],
    opts: Options,
    *,
    overwrite: bool,
    atomic: bool,
) -> None:
    """Run a folder command (``-r`` or ``sync``); raise :class:`Failed` with its exit code when it is not 0."""
    if overwrite:
        _usage(f"{command} -r: --overwrite is for single files; use --update changed or --update all")
    args = TreeArgs.from_params(params, atomic=atomic)
    code = run_tree_command(
        command,
        src,
        dst,
        args,
        config=opts.config,
        connect_timeout=opts.connect_timeout,
        quiet=opts.quiet,
        as_json=opts.as_json,
        debug=opts.debug,
    )
    if code != EXIT_OK:
        raise Failed(code)


def _kind(info: PluginInfo) -> str | None:
    """``built-in`` / ``third-party``; ``None`` for a blocked third-party name (never loaded: origin unknown)."""
    if info.builtin:
        return "built-in"
    return None if info.blocked else "third-party"


@cli.command("plugins", epilog=EXIT_CODES_HELP, short_help="List the plugins: active and blocked.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list on stdout.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
@_verbose
@_guarded
def plugins_cmd(as_json: bool, debug: bool) -> None:
    """List the plugins of the process-wide manager: active and blocked."""
    infos = plugin_manager().list_plugins()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "kind": _kind(info),
            "status": "blocked" if info.blocked else "active",
        }
        for info in infos
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    headers = ("NAME", "DISTRIBUTION", "VERSION", "KIND", "STATUS")
    table = [headers] + [
        tuple(
            str(row[key] if row[key] is not None else "-")
            for key in ("name", "distribution", "version", "kind", "status")
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


cli.add_command(audit_cli, "audit")  # the same command line as python -m remote_store_transfer.audit


@cli.command("demo", epilog=EXIT_CODES_HELP, short_help="Try it: upload, copy, download on temp stores.")
@click.option(
    "--size", "size_mib", type=click.IntRange(1, 1024), default=8, show_default=True, help="Size of the sample, MiB."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per operation on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, only errors.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
@_verbose
@_guarded
def demo_cmd(size_mib: int, as_json: bool, quiet: bool, debug: bool) -> None:
    """Upload, copy and download a sample file between a temp local store and a memory store."""
    from remote_store_transfer.cli.demo import run_demo  # noqa: PLC0415

    session = Session(Options(quiet=quiet, as_json=as_json, debug=debug))
    code = run_demo(session, size_mib * 1024 * 1024)
    if code != EXIT_OK:
        raise Failed(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI and exit with the documented code."""
    try:
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except Failed as exc:
        code = exc.code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort:  # Ctrl-C while click itself was busy (parsing, prompting)
        click.echo(f"{PROG}: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo(f"{PROG}: interrupted", err=True)
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
