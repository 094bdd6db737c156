"""The single-file commands: ``upload``, ``download`` and ``copy`` of one file, ``-`` for stdin or stdout.

Each body runs its operation in the command's :class:`~remote_store_transfer.cli.session.Session`,
which reports it, and returns the exit code; the command declarations in
:mod:`remote_store_transfer.cli` have parsed and checked the arguments.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from remote_store_transfer import download, transfer, upload
from remote_store_transfer.cli.report import DestinationError
from remote_store_transfer.cli.session import Session, destination_error
from remote_store_transfer.cli.stdio import STDIN, STDOUT, stdio_store
from remote_store_transfer.cli.stores import atomic_writes

if TYPE_CHECKING:
    from remote_store_transfer.cli.session import Options
    from remote_store_transfer.cli.stores import Location

__all__ = ["copy_file", "download_file", "upload_file"]


def upload_file(src: Location, dst: Location, opts: Options, *, overwrite: bool, atomic: bool) -> int:
    """``upload LOCAL NAME:PATH`` (LOCAL ``-``: stdin): the exit code."""
    if src.text == "-":
        return _upload_stdin(dst, opts, overwrite=overwrite, atomic=atomic)
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
            classify=lambda exc: destination_error(exc, dst.text, not_found=True, denied=True),
        )
    return outcome.exit_code


def download_file(src: Location, dst: Location, opts: Options, *, overwrite: bool, atomic: bool) -> int:
    """``download NAME:PATH LOCAL`` (LOCAL ``-``: stdout): the exit code."""
    if dst.text == "-":
        return _download_stdout(src, opts)
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
            classify=lambda exc: destination_error(exc, destination, local=destination),
        )
    return outcome.exit_code


def copy_file(src: Location, dst: Location, opts: Options, *, overwrite: bool, atomic: bool) -> int:
    """``copy NAME:PATH NAME:PATH``, store to store: the exit code."""
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
            classify=lambda exc: destination_error(exc, dst.text, not_found=total is not None),
        )
    return outcome.exit_code


def _upload_stdin(dst: Location, opts: Options, *, overwrite: bool, atomic: bool) -> int:
    """``upload - NAME:PATH``: stream stdin to the store, as a ``transfer`` from the stdio store (size unknown)."""
    if not dst.path or dst.path.endswith("/"):
        raise click.UsageError(f"upload: stdin has no file name: give the destination's, as in {dst.text}NAME")
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
            classify=lambda exc: destination_error(exc, dst.text, not_found=True, denied=True),
        )
    return outcome.exit_code


def _download_stdout(src: Location, opts: Options) -> int:
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
            classify=lambda exc: destination_error(exc, STDOUT, pipe=True),
        )
    if isinstance(outcome.error, DestinationError) and isinstance(outcome.error.error, BrokenPipeError):
        _silence_stdout()
    return outcome.exit_code


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at the null device, so the exit's flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
