"""The audit command line: ``remote-store-transfer audit ...`` and ``python -m remote_store_transfer.audit ...``.

Both run the click group :data:`audit` of this module (the main command
line adds it as its ``audit`` command), so they have the same commands,
options, output and exit codes::

    verify FILE... [--key-env VAR] [--anchor SEQ:HASH] [--head HEAD_FILE] [--json] [--debug]
    head FILE [--debug]

``verify`` checks the hash chain of each FILE, then that every file record
their batch records list is in one of them. ``head`` prints ``SEQ:HASH`` of
a log's last record, to be noted somewhere the log's writers cannot change
and passed later to ``verify --anchor``. See ``docs/plugins/audit.md``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from remote_store_transfer.audit.chain import chain_head
from remote_store_transfer.audit.logs import verify_logs
from remote_store_transfer.exitcodes import (
    EXIT_DENIED,
    EXIT_ERROR,
    EXIT_INTEGRITY,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_DENIED",
    "EXIT_ERROR",
    "EXIT_INTEGRITY",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "audit",
    "main",
]

PROG = "python -m remote_store_transfer.audit"
"""The program name of :func:`main` (under ``remote-store-transfer`` it is that command's)."""

EXIT_CODES_HELP = """\b
Exit codes:
  0    ok: every chain intact and every batch complete (head: printed)
  1    other error (a FILE that cannot be read for another reason)
  2    usage: bad option or argument, --key-env unset, a malformed --anchor or HEAD_FILE, a keyed (HMAC) log
       verified without --key-env
  3    not found: a FILE or the HEAD_FILE does not exist
  5    permission denied reading a FILE or the HEAD_FILE
  6    integrity failure: a broken chain, an incomplete batch, a record the anchor or head names missing or
       changed (head: the last record is damaged)
  130  interrupted (Ctrl-C)"""
"""The exit-code table of ``--help`` (``\\b`` keeps click from re-wrapping it)."""


@click.group(
    "audit",
    epilog=EXIT_CODES_HELP,
    short_help="Audit log tools: verify FILE..., head FILE.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def audit() -> None:
    """Audit log tools: verify audit logs, print a log's chain head."""


def _error(what: str, message: str) -> None:
    """Print ``PROG: error: COMMAND WHAT: MESSAGE`` on stderr (``COMMAND``: ``audit verify``, or ``verify``)."""
    ctx = click.get_current_context()
    prog = ctx.find_root().info_name or PROG
    click.echo(f"{prog}: error: {ctx.command_path.removeprefix(prog).strip()} {what}: {message}", err=True)


def _fail(what: str, message: str, code: int, *, error: BaseException | None = None, debug: bool = False) -> NoReturn:
    """Print the traceback of *error* (with *debug*) and the error line; exit with *code*."""
    if debug and error is not None:
        traceback.print_exception(error, file=sys.stderr)
    _error(what, message)
    click.get_current_context().exit(code)


def _unreadable(exc: OSError, fallback: str, *, debug: bool) -> NoReturn:
    """Report a file that could not be read (*fallback*: the file when the error names none)."""
    code = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_ERROR
    code = EXIT_DENIED if isinstance(exc, PermissionError) else code
    message = exc.strerror or str(exc)
    if exc.strerror and exc.filename is not None:
        message = f"{exc.strerror}: {exc.filename}"
    if code == EXIT_ERROR:
        message = f"{type(exc).__name__}: {message}"
    where = exc.filename if isinstance(exc.filename, str) else fallback
    _fail(where, message, code, error=exc, debug=debug)


@audit.command("verify", epilog=EXIT_CODES_HELP, short_help="Check audit logs: chains and batches.")
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--key-env", metavar="VAR", help="Environment variable holding the HMAC key the logs were written with.")
@click.option("--anchor", metavar="SEQ:HASH", help="A record noted earlier that the log must still hold (one FILE).")
@click.option(
    "--head",
    "head_file",
    metavar="HEAD_FILE",
    type=click.Path(dir_okay=False),
    help="The chain head the audit plugin published (anchor_path): the log must hold it (one FILE).",
)
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object on stdout.")
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def verify_cmd(
    files: tuple[str, ...], key_env: str | None, anchor: str | None, head_file: str | None, as_json: bool, debug: bool
) -> None:
    """Verify the audit logs FILE...: the hash chain of each, then that every file record their
    batch records list is in one of them. Exit 0 when intact and complete, 6 otherwise.

    Give every log a tree's records may be in: the caller's (its batch
    record) and each worker's (with {host} or {pid} in the audit path).
    With --head, the log must also hold the chain head published to the
    plugin's anchor_path (with --key-env, its MAC must match the key).
    """
    key = None if key_env is None else os.environ.get(key_env)
    if key_env is not None and not key:
        raise click.BadParameter(f"environment variable {key_env} is not set or empty", param_hint="--key-env")
    for given, what, hint in (
        (anchor, "an anchor is a record of one log", "--anchor"),
        (head_file, "a chain head is that of one log", "--head"),
    ):
        if given is not None and len(set(files)) > 1:
            raise click.BadParameter(f"{what}: give exactly one FILE with it", param_hint=hint)
    try:
        # the head is read before the log: the log only grows after the head is published
        head = None if head_file is None else Path(head_file).read_text(encoding="ascii", errors="replace")
        report = verify_logs(
            files,
            key=key,
            anchors=None if anchor is None else {files[0]: anchor},
            heads=None if head is None else {files[0]: head},
        )
    except OSError as exc:
        _unreadable(exc, files[0], debug=debug)
    except ValueError as exc:  # a malformed anchor or head
        hint = "--head" if "chain head" in str(exc) else "--anchor"
        raise click.BadParameter(str(exc), param_hint=hint) from exc
    keyed = [file for file, r in report.chains.items() if r.keyed]  # verified without a key: no verdict
    errors = [
        (file, f"record {r.first_bad} of {r.records}: {r.reason}")
        for file, r in report.chains.items()
        if not r.ok and not r.keyed
    ]
    errors += [(file, "the log is keyed (HMAC): verify it with its key, --key-env VAR") for file in keyed]
    errors += [(file, f"record {number}: {message}") for file, number, message in report.incomplete()]
    lines = [f"{file}: intact, {r.records} records" for file, r in report.chains.items() if r.ok]
    if report.batches and report.complete:
        lines.append(
            f"batches: complete, {report.batches} batch records list {report.listed} file records, all present"
        )
    if as_json:
        data = report.as_dict()
        if len(report.chains) == 1:  # one FILE: its object as it always was, completeness folded in
            data = data["logs"][0]
            if data["ok"] and not report.complete:
                _, number, message = report.incomplete()[0]
                data |= {"ok": False, "first_bad": number, "reason": message}
        lines = [json.dumps(data)]
    for line in lines:
        click.echo(line)
    for file, message in errors:
        _error(file, message)
    if not report.ok:  # a log that needs its key is a usage error, unless another one is broken
        broken = len(errors) > len(keyed) or not report.complete
        click.get_current_context().exit(EXIT_INTEGRITY if broken else EXIT_USAGE)


@audit.command("head", epilog=EXIT_CODES_HELP, short_help="Print SEQ:HASH of a log's last record.")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def head_cmd(file: str, debug: bool) -> None:
    """Print SEQ:HASH of the last record of the audit log FILE ("empty log" when it has none).

    Note it somewhere the log's writers cannot change; later, verify FILE
    --anchor SEQ:HASH fails if that record was removed or changed. It does
    not verify the log.
    """
    try:
        head = chain_head(file)
    except OSError as exc:
        _unreadable(exc, file, debug=debug)
    except ValueError as exc:
        _fail(file, f"its last record is damaged: {exc}", EXIT_INTEGRITY, error=exc, debug=debug)
    click.echo(head or "empty log")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line as ``python -m remote_store_transfer.audit`` (*argv*: its arguments); return the
    exit status."""
    try:
        code = audit.main(args=None if argv is None else list(argv), prog_name=PROG, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(f"{PROG}: interrupted", err=True)
        code = EXIT_INTERRUPTED
    return code if isinstance(code, int) else EXIT_OK
