"""Exit codes, error lines and result output (plain lines or JSON) of the command line.

A single file's :class:`Outcome`; a folder's plan lines, file objects, summary (line or object), failure
lines and exit code (:func:`report_tree`).
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
from remote_store import AlreadyExists, NotFound, PermissionDenied, RemoteStoreError

from remote_store_transfer.batch import TreeResult
from remote_store_transfer.errors import (
    ConfigError,
    DeletionsRefused,
    IncompleteTransferError,
    IntegrityError,
    SameFileError,
    TransferDenied,
    TreeOverlapError,
)
from remote_store_transfer.exitcodes import (
    EXIT_DENIED,
    EXIT_DESTINATION,
    EXIT_ERROR,
    EXIT_EXISTS,
    EXIT_INTEGRITY,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from remote_store_transfer.batch import FileOutcome

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_DENIED",
    "EXIT_DESTINATION",
    "EXIT_ERROR",
    "EXIT_EXISTS",
    "EXIT_INTEGRITY",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "TREE_EXIT_HELP",
    "DestinationError",
    "Outcome",
    "Unreachable",
    "error_line",
    "error_message",
    "error_where",
    "exit_code_for",
    "failed_count",
    "file_json",
    "format_bytes",
    "plan_line",
    "print_error",
    "raised_by_plugin",
    "report_tree",
    "service_error",
    "summary_json",
    "summary_line",
    "tree_exit_code",
]

PROG = "remote-store-transfer"

EXIT_CODES_HELP = """\b
Exit codes:
  0    ok
  1    other error
  2    usage: bad option or argument, unknown store, bad registry or plugin config, a folder into itself
  3    not found (the source, or its bucket or container)
  4    already exists (the destination; give --overwrite)
  5    denied by a plugin (policy or any other: TransferDenied), or permission denied
  6    integrity failure (a verifier rejected it; the source ended early; a broken or incomplete audit log)
  7    the destination cannot be written (no such bucket; a local path that is a folder or not writable)
  130  interrupted (Ctrl-C)"""
"""The exit-code table of ``--help`` (``\\b`` keeps click from re-wrapping it)."""

TREE_EXIT_HELP = (
    "Folders (-r, sync): the files under a local folder or a prefix NAME:PREFIX go to the same relative paths "
    "under the other end. When files fail, the exit code is theirs if they all share one (3, 4, 5, 6 or 7), "
    "else 1; 130 after Ctrl-C."
)
"""The exit-code rule of the folder commands, in their ``--help`` before the table."""


class DestinationError(Exception):
    """The destination end of an operation cannot be written (exit code 7); *error* is what the store or OS raised.

    Attributes:
        destination: The destination as the command line shows it.
        error: The original error.
    """

    def __init__(self, destination: str, error: BaseException) -> None:
        super().__init__(destination, error)
        self.destination = destination
        self.error = error

    def __str__(self) -> str:
        return f"cannot write the destination {self.destination}: {_message(self.error, with_type=True)}"


class Unreachable(Exception):
    """A store could not be reached (remote-store's ``BackendUnavailable``): *error*, with where it connects to.

    Exit code 1, as the error it wraps. The message names the store, its
    endpoint (an S3 endpoint URL, an SFTP ``host:port``) and the connect
    timeout of each attempt.

    Attributes:
        endpoints: ``store 'NAME' (sftp 127.0.0.1:22)``... for the stores the error may be about.
        error: The original error.
        timeout: The connect timeout (seconds) of each attempt.
    """

    def __init__(self, endpoints: list[str], error: BaseException, timeout: float) -> None:
        super().__init__(endpoints, error, timeout)
        self.endpoints = endpoints
        self.error = error
        self.timeout = timeout

    def __str__(self) -> str:
        where = " or ".join(self.endpoints)
        return f"cannot reach {where} (connect timeout {self.timeout:g} s): {_message(self.error, with_type=True)}"


_CODES: tuple[tuple[tuple[type[BaseException], ...], int], ...] = (
    ((KeyboardInterrupt,), EXIT_INTERRUPTED),
    ((DestinationError,), EXIT_DESTINATION),
    ((ConfigError, TreeOverlapError, SameFileError), EXIT_USAGE),
    ((IntegrityError, IncompleteTransferError), EXIT_INTEGRITY),
    ((TransferDenied, PermissionDenied, PermissionError), EXIT_DENIED),
    ((NotFound, FileNotFoundError), EXIT_NOT_FOUND),
    ((AlreadyExists, FileExistsError), EXIT_EXISTS),
)
"""``(error classes, exit code)``, checked in order: the first match wins."""


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an error that ended an operation (1 when none fits)."""
    for classes, code in _CODES:
        if isinstance(exc, classes):
            return code
    return EXIT_ERROR


def error_where(error: BaseException, source: str, destination: str) -> str:
    """Which end an error line names: the destination, the source, or ``source -> destination`` when unknown."""
    from remote_store import AlreadyExists, NotFound  # noqa: PLC0415 -- keep the top short

    if isinstance(error, DestinationError | AlreadyExists | FileExistsError):
        return destination
    if isinstance(error, NotFound | FileNotFoundError):
        return source
    return f"{source} -> {destination}"


def raised_by_plugin(exc: BaseException) -> str | None:
    """The name of the registered plugin whose hook raised *exc*, from its traceback; ``None`` when not known.

    Not known when no hook function of a plugin still registered is in the
    traceback (an error raised in a worker process lost its frames).
    """
    from remote_store_transfer import plugin_manager  # noqa: PLC0415 -- only for a denial

    codes: dict[object, str] = {}
    for caller in vars(plugin_manager().hook).values():  # every hook, whatever the spec adds
        for impl in caller.get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                codes[code] = impl.plugin_name
    found, tb = None, exc.__traceback__
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def _denial(exc: TransferDenied) -> str:
    """``denied by policy rule 'R': why`` (the ``policy`` plugin), ``denied by plugin 'P' (rule 'R'): why``."""
    plugin = raised_by_plugin(exc)
    if plugin == "policy":
        return f"denied by policy rule {exc.rule!r}: {exc.reason}"
    if plugin is None:
        return f"denied by rule {exc.rule!r}: {exc.reason}"
    return f"denied by plugin {plugin!r} (rule {exc.rule!r}): {exc.reason}"


def service_error(exc: BaseException) -> str | None:
    """The service's own code and message behind *exc*, from its chain (``__cause__`` / ``__context__``).

    ``NoSuchBucket: The specified bucket does not exist`` from a botocore ``ClientError``
    (``response["Error"]``, as s3fs and aiobotocore raise it too), or the type and message of a
    paramiko error (SFTP); ``None`` when the chain holds neither.
    """
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        response = getattr(error, "response", None)
        info = response.get("Error") if isinstance(response, dict) else None
        if isinstance(info, dict) and info.get("Code"):
            code, message = str(info["Code"]), str(info.get("Message") or "").strip()
            if code == "404":  # a HEAD's bare status: the NotFound line already says it all
                return None
            if code.isdigit():  # a HEAD has no body, only the HTTP status
                code = f"HTTP {code}"
            return f"{code}: {message}" if message else code
        if type(error).__module__.startswith("paramiko") and error is not exc:
            return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        error = error.__cause__ or error.__context__
    return None


def _message(exc: BaseException, *, with_type: bool | None = None) -> str:
    if isinstance(exc, TransferDenied):  # the line already names the operation and paths
        text = _denial(exc)
    elif isinstance(exc, Unreachable):  # names the type of the error it wraps
        text, with_type = str(exc), False
    elif isinstance(exc, RemoteStoreError) and exc.args and str(exc.args[0]):
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc)
    if with_type is None:
        with_type = exit_code_for(exc) == EXIT_ERROR
    if with_type or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    cause = None if isinstance(exc, Unreachable | DestinationError) else service_error(exc)
    # the service's own words (NoSuchBucket, InvalidAccessKeyId...), unless the line already says them
    if cause is not None and cause.split(": ", 1)[-1] not in text:
        text = f"{text} ({cause})"
    return " ".join(text.split())  # one line, whatever the message held


def error_message(exc: BaseException) -> str:
    """The one-line message of *exc* as error lines print it (``interrupted`` for Ctrl-C)."""
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else _message(exc)


def error_line(what: str, exc: BaseException, *, with_type: bool | None = None) -> str:
    """``remote-store-transfer: error: <what>: <message>`` -- one line.

    The message starts with the exception's type name when *with_type* is
    true; by default, for errors without an exit code of their own (code 1).
    """
    return f"{PROG}: error: {what}: {_message(exc, with_type=with_type)}"


def print_error(what: str, exc: BaseException, *, debug: bool, with_type: bool | None = None) -> None:
    """Print the traceback (with *debug*), then the one error line, on stderr."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(error_line(what, exc, with_type=with_type), file=sys.stderr, flush=True)


def format_bytes(n: float) -> str:
    """``1.5 MiB``: binary units, one decimal (bytes exact)."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


@dataclass
class Outcome:
    """The result of one operation, printed as a plain line or a JSON object.

    Attributes:
        operation: ``upload``, ``download`` or ``copy``.
        source: Where the bytes came from (``NAME:PATH`` or an absolute local path).
        destination: Where they went.
        bytes: Bytes moved (for a failure: how far it got).
        seconds: Wall time of the operation.
        error: The error that ended it, or ``None``.
        partial: After a failed non-atomic write: the destination that may hold a partial file.
    """

    operation: str
    source: str
    destination: str
    bytes: int = 0
    seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False)
    partial: str | None = None

    @property
    def ok(self) -> bool:
        """``True`` when the operation succeeded."""
        return self.error is None

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the error."""
        return EXIT_OK if self.error is None else exit_code_for(self.error)

    def as_json(self) -> str:
        """One JSON object: operation, source, destination, bytes, seconds, ok (and error, exit_code)."""
        data: dict[str, Any] = {
            "operation": self.operation,
            "source": self.source,
            "destination": self.destination,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "ok": self.ok,
        }
        if self.error is not None:
            data["error"] = "interrupted" if isinstance(self.error, KeyboardInterrupt) else _message(self.error)
            data["exit_code"] = self.exit_code
        if self.partial is not None:
            data["partial"] = self.partial
        return json.dumps(data)

    def as_line(self) -> str:
        """``upload a.bin -> s3:dir/a.bin: 8.0 MiB in 0.12 s (66.7 MiB/s)``."""
        rate = f" ({format_bytes(self.bytes / self.seconds)}/s)" if self.seconds > 0 else ""
        return (
            f"{self.operation} {self.source} -> {self.destination}: "
            f"{format_bytes(self.bytes)} in {self.seconds:.2f} s{rate}"
        )


# -- folders


_PLAN_VERB = {"transferred": "would transfer", "skipped": "would skip", "deleted": "would delete"}


def plan_line(outcome: FileOutcome) -> str:
    """``would transfer photos/a.jpg (new)``: one line of the dry-run plan."""
    reason = f" ({outcome.reason})" if outcome.reason else ""
    return f"{_PLAN_VERB[outcome.status]} {outcome.path}{reason}"


def failed_count(result: TreeResult, error: BaseException | None = None) -> int:
    """The failures of a tree: its failed files, plus the error that ended it before any file could fail.

    An error raised out of the tree (the destination could not be listed: bad credentials) is a
    failure too, or the summary would say ``0 failed`` of a run that failed; Ctrl-C is not one.
    """
    ended = error is not None and not isinstance(error, KeyboardInterrupt) and not result.failed
    return len(result.failed) + (1 if ended else 0)


def summary_line(
    command: str, source: str, destination: str, result: TreeResult, error: BaseException | None = None
) -> str:
    """The summary line of a folder command.

    ``upload /tmp/photos -> s3:photos: 3 transferred, 1 skipped, 0 failed, 0 deleted, 1.5 MiB in 0.42 s (3.6 MiB/s)``;
    a dry run: ``... (dry run): 3 would be transferred, 1 skipped, 0 failed, 0 would be deleted, 1.5 MiB``.
    """
    n = len
    failed = failed_count(result, error)
    if result.dry_run:
        return (
            f"{command} {source} -> {destination} (dry run): {n(result.transferred)} would be transferred, "
            f"{n(result.skipped)} skipped, {failed} failed, {n(result.deleted)} would be deleted, "
            f"{format_bytes(result.bytes_transferred)}"
        )
    seconds = result.seconds
    moved = result.bytes_transferred
    # a rate only for a run that wrote files: bytes of failed tries alone are no throughput
    rate = f" ({format_bytes(moved / seconds)}/s)" if seconds > 0 and moved and result.transferred else ""
    return (
        f"{command} {source} -> {destination}: {n(result.transferred)} transferred, {n(result.skipped)} skipped, "
        f"{failed} failed, {n(result.deleted)} deleted, "
        f"{format_bytes(result.bytes_transferred)} in {seconds:.2f} s{rate}"
    )


def summary_json(
    command: str, source: str, destination: str, result: TreeResult, code: int, error: BaseException | None
) -> str:
    """The summary as one JSON object (the last line of ``--json``)."""
    data: dict[str, Any] = {
        "operation": command,
        "source": source,
        "destination": destination,
        "transferred": len(result.transferred),
        "skipped": len(result.skipped),
        "failed": failed_count(result, error),
        "deleted": len(result.deleted),
        "bytes": result.bytes_transferred,
        "seconds": round(result.seconds, 6),
        "dry_run": result.dry_run,
        "ok": code == EXIT_OK,
    }
    if code != EXIT_OK:
        data["error"] = error_message(error) if error is not None else f"{failed_count(result)} failed"
        data["exit_code"] = code
    return json.dumps(data)


def tree_exit_code(failed: Mapping[str, BaseException]) -> int:
    """0 when no file failed; the failures' exit code when they all share one; else 1.

    A file cut by Ctrl-C counts as 130.
    """
    codes = {exit_code_for(error) for error in failed.values()}
    if not codes:
        return EXIT_OK
    return codes.pop() if len(codes) == 1 else EXIT_ERROR


def file_json(outcome: FileOutcome) -> str:
    """One file's JSON object; a denial's ``error`` names the plugin that denied it, as its error line does."""
    data = outcome.as_dict()
    if isinstance(outcome.error, TransferDenied):
        data["error"] = f"TransferDenied: {error_message(outcome.error)}"
    elif outcome.error is not None and (cause := service_error(outcome.error)) is not None:
        data["error"] += f" ({cause})"  # the service's own code, as the error line shows it
    return json.dumps(data)


def _print_failures(result: TreeResult, source: str, destination: str, *, debug: bool) -> None:
    """One line per failed file on stderr: ``remote-store-transfer: error: PATH: ErrorType: message``.

    A failure of the tree itself (under ``""``) names what failed: the listing of the source, or the
    deletions under the destination that were refused.
    """
    for path, error in result.failed.items():
        where = path or (f"delete under {destination}" if isinstance(error, DeletionsRefused) else f"listing {source}")
        if isinstance(error, KeyboardInterrupt):
            click.echo(f"{PROG}: interrupted: {where}", err=True)
            continue
        if debug:
            traceback.print_exception(error, file=sys.stderr)
        click.echo(error_line(where, error, with_type=not isinstance(error, DestinationError)), err=True)


def report_tree(
    command: str,
    source: str,
    destination: str,
    result: TreeResult | None,
    error: BaseException | None,
    *,
    quiet: bool,
    as_json: bool,
    debug: bool,
) -> int:
    """Print the summary (stdout), the failures and the error (stderr); the exit code."""
    if error is not None:
        code = exit_code_for(error)
    else:
        assert result is not None
        code = tree_exit_code(result.failed)
    if as_json:
        click.echo(summary_json(command, source, destination, result or TreeResult(), code, error))
    elif result is not None and not quiet:
        click.echo(summary_line(command, source, destination, result, error))
    sys.stdout.flush()
    if result is not None:
        _print_failures(result, source, destination, debug=debug)
    if isinstance(error, KeyboardInterrupt):
        click.echo(f"{PROG}: interrupted: {command} {source} -> {destination}", err=True)
        return EXIT_INTERRUPTED
    if error is not None:
        print_error(f"{command} {error_where(error, source, destination)}", error, debug=debug)
    return code
