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

from remote_store_transfer.endpoint import Endpoint
from remote_store_transfer.errors import SameFileError

if TYPE_CHECKING:
    from remote_store import Store

__all__ = ["refuse_same_file", "same_backend"]


_places: dict[int, tuple[str | None, str, weakref.ref[Store]]] = {}
"""``id(store)`` -> ``(kind, native root, weak reference)``; an entry goes when its store does."""


def _place(store: Store) -> tuple[str | None, str, weakref.ref[Store]]:
    """``(kind, native root, _)`` of *store*, looked up once per store: it is on every call's path.

    Keyed by ``id()``: ``Store.__hash__`` and ``__eq__`` are Python code, a plain ``dict`` lookup is not.
    """
    place = _places.get(id(store))
    if place is not None:
        return place
    try:
        kind, root = store.resolve("").kind, store.native_path("").strip("/")
    except Exception:  # noqa: BLE001 -- a store that cannot say where it is: never provably the same place
        kind, root = None, ""
    key = id(store)
    place = _places[key] = (kind, root, weakref.ref(store, lambda _: _places.pop(key, None)))
    return place


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


def refuse_same_file(
    src_store: Store | None, src_path: str, dst_store: Store | None, dst_path: str, operation: str
) -> None:
    """Raise :class:`SameFileError` when the destination is the very file the source is.

    Each end is a store and a path in it, or ``None`` and a local path.
    Cheap on the common path (it runs on every call): the stores' kinds are
    looked up once per store, two stores that can never share a file
    (other kinds, other backends) are remembered as such, and two store
    paths are compared only when their last segments match (the same store
    file has the same name; only local files have other names, through links).

    Raises:
        SameFileError: Naming both ends, before anything is opened for writing.
    """
    if (id(src_store), id(dst_store)) in _apart:
        return
    src_kind = "local" if src_store is None else _place(src_store)[0]
    dst_kind = "local" if dst_store is None else _place(dst_store)[0]
    if src_kind is None or src_kind != dst_kind:
        if src_store is not None and dst_store is not None:
            _remember_apart(src_store, dst_store)
        return
    if src_kind == "local":
        same = _same_local_file(_native(src_store, src_path), _native(dst_store, dst_path))
    else:
        assert src_store is not None
        assert dst_store is not None
        if not same_backend(src_store, dst_store):
            _remember_apart(src_store, dst_store)
            return
        if src_path.rstrip("/").rpartition("/")[2] != dst_path.rstrip("/").rpartition("/")[2]:
            return
        same = _native(src_store, src_path).strip("/") == _native(dst_store, dst_path).strip("/")
    if same:
        source, destination = Endpoint(src_store, src_path), Endpoint(dst_store, dst_path)
        raise SameFileError(operation, source.describe(), destination.describe())


_apart: dict[tuple[int, int], tuple[weakref.ref[Store], weakref.ref[Store]]] = {}
"""``(id(source store), id(destination store))`` of the pairs that can never hold the same file:
of different kinds, or (not local) on different backends. An entry goes when either store does."""


def _remember_apart(src_store: Store, dst_store: Store) -> None:
    key = (id(src_store), id(dst_store))

    def forget(_: object) -> None:
        _apart.pop(key, None)

    _apart[key] = (weakref.ref(src_store, forget), weakref.ref(dst_store, forget))


def _native(store: Store | None, path: str) -> str:
    """The physical path of one end: the local path, or the store's native path of it ("" if it refuses)."""
    if store is None:
        return path
    try:
        return store.native_path(path)
    except Exception:  # noqa: BLE001 -- a path the store refuses fails the call itself, later, with its own error
        return ""
