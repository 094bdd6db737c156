"""Audit log tools without the CLI's dependencies: ``python -m remote_store_transfer.audit``.

Usage::

    python -m remote_store_transfer.audit verify FILE [--anchor SEQ:HASH] [--key-env VAR]
    python -m remote_store_transfer.audit head FILE

``verify`` prints ``OK: N records, chain intact`` and exits 0, or prints
``FAILED at record K of N: reason`` and exits 1 (2 for a usage error or an
unreadable file). ``head`` prints the ``seq:hash`` of the last record, to be
noted somewhere the log's writers cannot change, and passed later as
``--anchor`` so that records removed from the end are detected too.
``--key-env`` names the environment variable that holds the HMAC key the
log was written with.

The functions live in :mod:`remote_store_transfer.plugin.audit`
(:func:`~remote_store_transfer.plugin.audit.verify_chain`,
:func:`~remote_store_transfer.plugin.audit.chain_head`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from remote_store_transfer.plugin.audit import VerifyResult, chain_head, verify_chain

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["VerifyResult", "chain_head", "main", "verify_chain"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m remote_store_transfer.audit", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check the hash chain of an audit log file")
    verify.add_argument("file")
    verify.add_argument("--anchor", help="SEQ:HASH of a record noted earlier (from 'head'): detects removal at the end")
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
        result = verify_chain(args.file, key=key, anchor=args.anchor)
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {args.file}: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: {result}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
