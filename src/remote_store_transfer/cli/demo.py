"""``remote-store-transfer demo``: a short, self-contained session that needs no configuration.

A temp directory holds a local store (``LocalBackend``) and a sample file;
a ``MemoryBackend`` store lives in the process. The demo uploads the sample
to the local store, copies it to the memory store, downloads it back and
checks that the sha256 of the result equals the original's. Every step goes
through the public functions and the process-wide plugin manager, so the
installed plugins (and the progress bar) see it like any other transfer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import TYPE_CHECKING

import click
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

from remote_store_transfer import download, transfer, upload
from remote_store_transfer.cli.report import EXIT_INTEGRITY, EXIT_OK, PROG, format_bytes

if TYPE_CHECKING:
    from remote_store_transfer.cli.session import Session

__all__ = ["run_demo"]

_BLOCK = 1024 * 1024


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _make_sample(path: str, size: int) -> str:
    """Write *size* random bytes to *path*; return their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(left, _BLOCK))
            fh.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def run_demo(session: Session, size: int) -> int:
    """Run the demo with *session*'s output options; return the exit code."""
    chatty = not session.quiet and not session.as_json

    def say(text: str) -> None:
        if chatty:
            click.echo(text)

    with tempfile.TemporaryDirectory(prefix="remote-store-transfer-demo-") as tmp:
        local = Store(backend=LocalBackend(root=os.path.join(tmp, "local-store")))
        memory = Store(backend=MemoryBackend())
        sample = os.path.join(tmp, "sample.bin")
        back = os.path.join(tmp, "downloaded.bin")
        expected = _make_sample(sample, size)
        say(f"demo: local store {os.path.join(tmp, 'local-store')} and an in-memory store")
        say(f"sample {sample}: {format_bytes(size)}, sha256 {expected[:16]}...")
        steps = (
            ("upload", sample, "local:demo/sample.bin", lambda: upload(local, sample, "demo/sample.bin")),
            (
                "copy",
                "local:demo/sample.bin",
                "memory:archive/sample.bin",
                lambda: transfer(local, "demo/sample.bin", memory, "archive/sample.bin"),
            ),
            ("download", "memory:archive/sample.bin", back, lambda: download(memory, "archive/sample.bin", back)),
        )
        for operation, source, destination, call in steps:
            outcome = session.run(operation, source, destination, call, total=size, label=f"{operation} sample.bin")
            if not outcome.ok:
                return outcome.exit_code
        actual = _sha256(back)
        if actual != expected:
            click.echo(f"{PROG}: error: demo {back}: sha256 {actual} differs from the sample's {expected}", err=True)
            return EXIT_INTEGRITY
        say(f"ok: the downloaded copy has the sample's sha256 {expected[:16]}...")
        local.close()
        memory.close()
    return EXIT_OK
