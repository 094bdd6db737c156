"""Where a path physically is: refusing a transfer whose destination is its own source.

``transfer(store, "a", store, "a", overwrite=True)`` would open the file for
writing while it is being read, and leave it empty: upstream
``ext.transfer`` loses the data that way. So do a download onto the very file
a local store serves and an upload from it. :func:`refuse_same_file` finds
such a call from the public Store API only (``resolve()`` and
``native_path()``), whatever the spelling: another ``Store`` object or a
``child()`` alias of the same place, a local path with ``./``, ``//``, a
symlink or a hard link to the same file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from remote_store_transfer.errors import SameFileError

if TYPE_CHECKING:
    from remote_store import Store

    from remote_store_transfer.context import Endpoint

__all__ = ["refuse_same_file", "same_backend"]


def _kind_and_native(store: Store, path: str) -> tuple[str, str] | None:
    try:
        plan = store.resolve(path)
    except Exception:  # noqa: BLE001 -- a path the store refuses fails the call itself, later, with its own error
        return None
    return plan.kind, plan.native_path


def _root(store: Store) -> str:
    return store.native_path("").strip("/")


def same_backend(a: Store, b: Store) -> bool:
    """``True`` when *a* and *b* reach the same backend object (possibly through different ``child()`` roots).

    Uses ``Store.__eq__`` (same backend object, same root) on the two stores
    brought to the same root with ``child()``.
    """
    ra, rb = _root(a), _root(b)
    try:
        if ra == rb:
            return a == b
        if rb.startswith(ra + "/") or not ra:
            return a.child(rb[len(ra) :].strip("/")) == b
        if ra.startswith(rb + "/") or not rb:
            return b.child(ra[len(rb) :].strip("/")) == a
    except Exception:  # noqa: BLE001 -- a root that child() refuses: not provably the same
        return False
    return False


def _same_local_file(a: str, b: str) -> bool:
    """The two local paths name one existing file (hard links, symlinks, ``./`` and ``//`` included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: nothing to overwrite
        return False


def refuse_same_file(source: Endpoint, destination: Endpoint, operation: str) -> None:
    """Raise :class:`SameFileError` when *destination* is the very file *source* is.

    Raises:
        SameFileError: Naming both ends, before anything is opened for writing.
    """
    src = _physical(source)
    dst = _physical(destination)
    if src is None or dst is None:
        return
    (src_kind, src_path), (dst_kind, dst_path) = src, dst
    if src_kind != dst_kind:
        return
    if src_kind == "local":
        same = _same_local_file(src_path, dst_path)
    else:
        same = src_path.strip("/") == dst_path.strip("/")
        if same and source.store is not None and destination.store is not None:
            same = same_backend(source.store, destination.store)
    if same:
        raise SameFileError(operation, source.describe(), destination.describe())


def _physical(end: Endpoint) -> tuple[str, str] | None:
    if end.store is None:
        return ("local", end.path)
    return _kind_and_native(end.store, end.path)
