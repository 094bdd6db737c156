"""``capture()``, exported by the package: the :class:`~remote_store_transfer.TransferContext` of your own calls.

``upload``, ``download`` and ``transfer`` return ``None``; what plugins learnt
about a call (the ``integrity`` plugin's digest, for example) lives on that
call's context. Wrap the calls in ``capture()`` to receive those contexts::

    from remote_store_transfer import capture, upload
    from remote_store_transfer.plugin.integrity import digest_of

    with capture() as transfers:
        upload(store, "report.csv", "reports/report.csv")
    print(digest_of(transfers[0]))   # Digest(algorithm='sha256', hexdigest='...', verified=None)

Every call that reaches ``pre_transfer`` (successful or failed) is appended,
in call order, when it starts; its fields are final once the call has
returned or raised. Calls rejected by the local checks before any hook
(``FileNotFoundError``, ``FileExistsError``) are not captured.

The capture is scoped with a :class:`contextvars.ContextVar`: it sees the
calls made by the current thread (or asyncio task) inside the ``with``
block, and nested captures each see the calls made inside them. A thread
started inside the block does not inherit it (run it with
``contextvars.copy_context().run`` if it should).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from remote_store_transfer.context import TransferContext

__all__ = ["capture"]

_active: ContextVar[tuple[list[TransferContext], ...]] = ContextVar("remote_store_transfer_capture", default=())


@contextlib.contextmanager
def capture() -> Iterator[list[TransferContext]]:
    """Collect the context of every transfer call made inside the ``with`` block.

    Yields:
        A list that receives each call's :class:`~remote_store_transfer.TransferContext`.
    """
    transfers: list[TransferContext] = []
    token = _active.set((*_active.get(), transfers))
    try:
        yield transfers
    finally:
        _active.reset(token)


active = _active.get
"""``active()``: the lists of the enclosing ``capture()`` blocks, outermost first; empty outside any.

A call made inside one must build its context even when no plugin needs it. (A C function: no Python frame.)
"""


def record(context: TransferContext) -> None:
    """Append *context* to every active capture (called by the core once per call)."""
    for transfers in _active.get():
        transfers.append(context)
