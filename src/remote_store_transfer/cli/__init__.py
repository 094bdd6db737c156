"""The ``remote-store-transfer`` command line (also ``python -m remote_store_transfer``).

Subcommands: ``upload``, ``download``, ``copy`` (the three functions, with
named stores from a remote-store registry TOML; with ``-r``, the three tree
functions), ``sync``, ``plugins``, ``audit`` (:mod:`remote_store_transfer.audit.cli`) and ``demo``. See
``docs/cli.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from remote_store_transfer import __version__, plugin_manager
from remote_store_transfer.audit.cli import audit as audit_cli
from remote_store_transfer.cli.files import copy_file, download_file, upload_file
from remote_store_transfer.cli.report import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    TREE_EXIT_HELP,
    exit_code_for,
    print_error,
)
from remote_store_transfer.cli.session import OPTION_NAMES, Options, Session
from remote_store_transfer.cli.stores import CONNECT_TIMEOUT, STORES_ENV, Location, StoreLookupError, parse_location
from remote_store_transfer.cli.tree import Command, TreeArgs, reject_tree_options, run_tree_command, tree_options
from remote_store_transfer.cli.verbosity import configure_logging

if TYPE_CHECKING:
    from remote_store_transfer.plugin.manager import PluginInfo

__all__ = ["cli", "main"]

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
        opts = Options(**{name: kwargs.pop(name) for name in OPTION_NAMES})
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
    _file_or_tree("upload", upload_file, src, dst, tree, opts, recursive=recursive, overwrite=overwrite, atomic=atomic)


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
    _file_or_tree(
        "download", download_file, src, dst, tree, opts, recursive=recursive, overwrite=overwrite, atomic=atomic
    )


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
    _file_or_tree("copy", copy_file, src, dst, tree, opts, recursive=recursive, overwrite=overwrite, atomic=atomic)


def _file_or_tree(
    command: Command,
    body: Callable[..., int],
    src: Location,
    dst: Location,
    tree: dict[str, Any],
    opts: Options,
    *,
    recursive: bool,
    overwrite: bool,
    atomic: bool,
) -> None:
    """Run the single-file *body*, or with ``-r`` the folder command; ``-`` is one stream, never a folder."""
    dash = "-" in (src.text, dst.text)
    if recursive and not dash:
        _tree(command, src, dst, tree, opts, overwrite=overwrite, atomic=atomic)
        return
    if recursive:
        _usage(f"{command} -r: '-' (stdin or stdout) is one file, not a folder (write ./- for a path named -)")
    reject_tree_options(command)
    _exit(body(src, dst, opts, overwrite=overwrite, atomic=atomic))


def _exit(code: int) -> None:
    """The body reported its outcome: exit with *code* unless it is 0."""
    if code != EXIT_OK:
        raise Failed(code)


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
    _tree("sync", parse_location(source), parse_location(destination), tree, opts, overwrite=False, atomic=atomic)


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
    _exit(
        run_tree_command(
            command, src, dst, args, opts, verbosity=int(click.get_current_context().meta.get(_VERBOSITY, 0))
        )
    )


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
    _exit(run_demo(session, size_mib * 1024 * 1024))


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point: run the CLI and exit with the documented code.

    Run as the program (*argv* ``None``), an interrupted command exits at once
    once the exit handlers ran (:func:`_exit_interrupted`); called with
    *argv* (in-process), it raises ``SystemExit`` as usual.
    """
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
    if argv is None and code == EXIT_INTERRUPTED:
        _exit_interrupted(code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _exit_interrupted(code: int) -> None:
    """After Ctrl-C: run the exit handlers, flush stdio and end the process, without the interpreter's teardown.

    Freeing the modules and objects of s3fs/aiobotocore/botocore at interpreter
    finalization costs 0.2-0.5 s of CPU (no I/O) after the last line ran; a
    user who pressed Ctrl-C waits for it. Every file has ended by now (the
    tree waits for the files in flight), and ``atexit`` handlers (logging, plugins'
    exporters, multiprocessing) still run. A live non-daemon thread (a plugin's,
    Dask's, a pool worker still ending) is joined first, as the normal exit
    would: the same exit whatever the threads' timing.
    """
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what the normal exit runs before its teardown (CPython's, in typeshed)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader gone meanwhile: nothing left to tell it
            stream.flush()
    os._exit(code)
