"""One end of a transfer: :class:`Endpoint`, a path in a store or a local file.

The lowest layer, with :mod:`remote_store_transfer.errors`: the per-call
context (:mod:`remote_store_transfer.context`) and the tree's batch
(:mod:`remote_store_transfer.batch`) both name their ends with it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from remote_store import Store

__all__ = ["Endpoint"]


class Endpoint:
    """One end of a transfer: a path in a :class:`~remote_store.Store`, or a local file.

    Attributes:
        store: The ``Store`` the path belongs to, or ``None`` for a local file.
            Plugins may call its public API (``supports``, ``native_path``,
            ``read``...) but must never touch backend internals.
        path: The store-relative path (as the caller gave it) when *store*
            is set, else the local file-system path (``os.fspath`` of what
            the caller gave).
    """

    __slots__ = ("path", "store")

    def __init__(self, store: Store | None, path: str) -> None:
        self.store = store
        self.path = path

    @property
    def is_local(self) -> bool:
        """``True`` when this end is a local file rather than a store path."""
        return self.store is None

    def describe(self) -> str:
        """A human-readable location: ``local:/abs/path`` or ``Store(...):path``.

        Uses only ``repr(store)``, which names the backend and root path and
        never any credentials.
        """
        if self.store is None:
            return f"local:{os.path.abspath(self.path)}"
        return f"{self.store!r}:{self.path}"

    def __repr__(self) -> str:
        return f"Endpoint({self.describe()})"
