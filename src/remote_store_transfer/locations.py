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
import weakref
from typing import TYPE_CHECKING

from remote_store_transfer.errors import SameFileError

if TYPE_CHECKING:
    from remote_store import Store

    from remote_store_transfer.endpoint import Endpoint

__all__ = ["refuse_same_file", "same_backend"]


_places: weakref.WeakKeyDictionary[Store, tuple[str | None, str]] = weakref.WeakKeyDictionary()


def _place(store: Store) -> tuple[str | None, str]:
    """``(kind, native root)`` of *store*, looked up once per store: it is on every call's path."""
    try:
        return _places[store]
    except KeyError:
        pass
    try:
        place: tuple[str | None, str] = (store.resolve("").kind, store.native_path("").strip("/"))
    except Exception:  # noqa: BLE001 -- a store that cannot say where it is: never provably the same place
        place = (None, "")
    _places[store] = place
    return place


def _kind(store: Store) -> str | None:
    return _place(store)[0]


def _root(store: Store) -> str:
    return _place(store)[1]


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

    Cheap on the common path (it runs on every call): the stores' kinds are
    looked up once per store, and two store paths are compared only when
    their last segments match (the same store file has the same name; only
    local files have other names, through links).

    Raises:
        SameFileError: Naming both ends, before anything is opened for writing.
    """
    src_store, dst_store = source.store, destination.store
    src_kind = "local" if src_store is None else _kind(src_store)
    dst_kind = "local" if dst_store is None else _kind(dst_store)
    if src_kind is None or src_kind != dst_kind:
        return
    if src_kind == "local":
        same = _same_local_file(_native(source), _native(destination))
    else:
        assert src_store is not None
        assert dst_store is not None
        if source.path.rstrip("/").rpartition("/")[2] != destination.path.rstrip("/").rpartition("/")[2]:
            return
        same = _native(source).strip("/") == _native(destination).strip("/") and same_backend(src_store, dst_store)
    if same:
        raise SameFileError(operation, source.describe(), destination.describe())


def _native(end: Endpoint) -> str:
    """The physical path of one end: the local path, or the store's native path of it ("" if it refuses)."""
    if end.store is None:
        return end.path
    try:
        return end.store.native_path(end.path)
    except Exception:  # noqa: BLE001 -- a path the store refuses fails the call itself, later, with its own error
        return ""
