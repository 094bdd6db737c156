"""The built-in ``progress`` plugin: forwards each chunk's size to the caller's ``on_progress``.

It is always registered and cannot be blocked, because ``on_progress`` is part
of the public signature of ``upload``, ``download`` and ``transfer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remote_store_transfer.plugin import hookimpl

if TYPE_CHECKING:
    from remote_store_transfer.context import TransferContext

__all__ = ["NAME", "on_chunk"]

NAME = "progress"


@hookimpl
def on_chunk(context: TransferContext, nbytes: int) -> None:
    """Call ``context.on_progress(nbytes)``: per chunk, not cumulative, never 0."""
    callback = context.on_progress
    if callback is not None:
        callback(nbytes)
