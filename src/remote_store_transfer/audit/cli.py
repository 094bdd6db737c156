"""Audit log tools without the CLI's dependencies: ``python -m remote_store_transfer.audit``.

Usage::

    python -m remote_store_transfer.audit verify FILE... [--anchor SEQ:HASH] [--head HEAD_FILE] [--key-env VAR]
    python -m remote_store_transfer.audit head FILE

``verify`` prints, for each FILE, ``FILE: OK: N records, chain intact`` or
``FILE: FAILED at record K of N: reason``; then, when the logs hold batch
records, ``batches: OK: ...`` or one ``batches: FAILED: FILE record K:
batch ... lists ... file record(s) that none of the logs holds: ...`` per
incomplete batch record (give every log a tree's records may be in: the
caller's and each worker's). It exits 0 when every chain is intact and every
batch complete, 1 otherwise (2 for a usage error or an unreadable file).
``head`` prints the ``seq:hash`` of the last record, to be noted somewhere
the log's writers cannot change, and passed later as ``--anchor`` (with one
FILE) so that records removed from the end are detected too. ``--head``
names the file the audit plugin publishes the chain head to (its
``anchor_path``; one FILE): the log must hold that record, which also
detects a truncated or replaced log (with a key, the head's MAC is checked
too). ``--key-env``
names the environment variable that holds the HMAC key the logs were
written with.

The functions live in :mod:`remote_store_transfer.audit`
(:func:`~remote_store_transfer.audit.verify_chain`,
:func:`~remote_store_transfer.audit.verify_logs`,
:func:`~remote_store_transfer.audit.chain_head`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from remote_store_transfer.audit.chain import VerifyResult, chain_head, verify_chain
from remote_store_transfer.audit.logs import VerifyReport, verify_logs

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["VerifyReport", "VerifyResult", "chain_head", "main", "verify_chain", "verify_logs"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m remote_store_transfer.audit", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check audit log files: each hash chain, and their batch records")
    verify.add_argument("file", nargs="+")
    verify.add_argument(
        "--anchor", help="SEQ:HASH of a record noted earlier (from 'head'; one FILE): detects removal at the end"
    )
    verify.add_argument(
        "--head", metavar="HEAD_FILE", help="the chain head the audit plugin published (anchor_path; one FILE)"
    )
    verify.add_argument("--key-env", metavar="VAR", help="environment variable holding the log's HMAC key")
    head = commands.add_parser("head", help="print SEQ:HASH of the last record, to keep as an anchor")
    head.add_argument("file")
    args = parser.parse_args(argv)
    try:
        if args.command == "head":
            print(chain_head(args.file) or "empty log")
            return 0
        key = None
        if args.key_env:
            key = os.environ.get(args.key_env)
            if not key:
                parser.error(f"environment variable {args.key_env} is not set or empty")
        files: list[str] = args.file
        if args.anchor is not None and len(set(files)) > 1:
            parser.error("--anchor is a record of one log: give exactly one FILE with it")
        if args.head is not None and len(set(files)) > 1:
            parser.error("--head is the chain head of one log: give exactly one FILE with it")
        head_text = None
        if args.head is not None:  # read before the log: the log only grows after the head is published
            with open(args.head, encoding="ascii", errors="replace") as fh:
                head_text = fh.read()
        report = verify_logs(
            files,
            key=key,
            anchors=None if args.anchor is None else {files[0]: args.anchor},
            heads=None if head_text is None else {files[0]: head_text},
        )
    except (OSError, ValueError) as exc:
        where = exc.filename if isinstance(exc, OSError) and isinstance(exc.filename, str) else " ".join(args.file)
        print(f"{parser.prog}: error: {where}: {exc}", file=sys.stderr)
        return 2
    for file, result in report.chains.items():
        print(f"{file}: {result}")
    if report.batches and report.complete:
        print(f"batches: OK: {report.batches} batch records list {report.listed} file records, all present")
    for file, number, message in report.incomplete():
        print(f"batches: FAILED: {file} record {number}: {message}")
    return 0 if report.ok else 1
