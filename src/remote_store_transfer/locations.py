"""Where a path physically is: refusing a transfer whose destination is its own source.

``transfer(store, "a", store, "a", overwrite=True)`` would open the file for
writing while it is being read, and leave it empty: upstream
``ext.transfer`` loses the data that way. So do a download onto the very file
a local store serves and an upload from it. :func:`refuse_same_file` finds
such a call from the public Store API only (``resolve()`` and
``native_path()``), whatever the spelling: another ``Store`` object or a
``child()`` alias of the same place, another backend object on the same
bucket or server, a local path with ``./``, ``//``, a symlink or a hard link
to the same file. :func:`physical` is the one answer to "where is this
store path": the tree overlap check uses it too.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remote_store_transfer.endpoint import Endpoint
from remote_store_transfer.errors import SameFileError

if TYPE_CHECKING:
    from collections.abc import Callable

    from remote_store import ResolutionPlan, Store

__all__ = [
    "Location",
    "container_name",
    "local_file",
    "native_root",
    "physical",
    "refuse_same_file",
    "same_backend",
    "store_kind",
    "store_location",
]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a path physically is.

    Attributes:
        kind: ``"local"``, ``"s3"`` (every S3 backend: ``s3``, ``s3-pyarrow``), ``"sftp"``, ``"azure"``,
            or the backend's own kind.
        authority: What names the place the path is in: ``(endpoint URL, bucket)`` for S3,
            ``(host, port)`` for SFTP, ``(account URL, container)`` for Azure, ``()`` for local
            paths; ``None`` for a kind whose resolve() names no place (a memory store): two such
            locations are the same place only through the same backend object (:func:`same_backend`).
        path: The native path: the real path of a local one (links and ``..`` resolved), else the
            backend's native path without leading or trailing ``/``.
    """

    kind: str
    authority: tuple[str, ...] | None
    path: str

    @property
    def sep(self) -> str:
        """The path separator of :attr:`path`."""
        return os.sep if self.kind == "local" else "/"

    def same_place(self, other: Location) -> bool | None:
        """``True``/``False`` when the two are known to be in the same place (or not); ``None`` when unknown."""
        if self.kind != other.kind:
            return False
        if self.authority is None or other.authority is None:
            return None
        return self.authority == other.authority


def _authority(plan: ResolutionPlan) -> tuple[str, tuple[str, ...] | None]:
    """``(kind, authority)`` of a resolution plan (see :class:`Location`)."""
    details = plan.details
    if plan.kind == "local":
        return "local", ()
    if "bucket" in details:
        return "s3", (str(details.get("endpoint_url") or "").rstrip("/"), str(details["bucket"]))
    if plan.kind == "sftp" and "host" in details:
        return "sftp", (str(details["host"]).lower(), str(details.get("port", 22)))
    if "container" in details and "account_url" in details:
        return plan.kind, (str(details["account_url"] or "").rstrip("/"), str(details["container"]))
    return plan.kind, None


def physical(store: Store | None, path: str) -> Location | None:
    """Where *path* of *store* (``None``: a local path) physically is; ``None`` when the store cannot say."""
    if store is None:
        return Location("local", (), os.path.realpath(path))
    try:
        plan = store.resolve(path.strip("/"))
    except Exception:  # noqa: BLE001 -- a store that cannot say where it is: never provably the same place
        return None
    kind, authority = _authority(plan)
    if kind == "local":
        return Location(kind, authority, os.path.realpath(plan.native_path))
    return Location(kind, authority, plan.native_path.strip("/"))


def store_location(store: Store, path: str = "", *, real: bool = False) -> str:
    """Where *path* of *store* physically is, as text: ``"<backend>:<native path>"``.

    For example ``"local:/srv/archive/a.csv"``, ``"s3:prod-bucket/a.csv"``,
    ``"memory:a.csv"``. Made from the public ``Store.resolve()``; this is what
    the policy plugin's ``read_only`` patterns and physical path rules are
    matched against, and what the audit records. With *real*, the native path
    of a local store is its ``os.path.realpath`` (symlinks, ``..``, ``./`` and
    ``//`` resolved).

    Raises:
        Whatever ``resolve()`` raises for a path the store refuses.
    """
    plan = store.resolve(path)
    native = plan.native_path
    if real and plan.kind == "local":
        native = os.path.realpath(native)
    return f"{plan.backend}:{native}"


def store_kind(store: Store) -> str | None:
    """The kind of *store*'s backend (``"local"``, ``"s3"``, ``"sftp"``, ``"memory"``...; ``None``: it cannot say)."""
    place = _place(store)
    return None if place is None else place.kind


def container_name(store: Store) -> str | None:
    """The bucket or container *store* is in (S3, Azure), else ``None``."""
    place = _place(store)
    if place is None or not place.authority or place.kind in ("local", "sftp"):
        return None
    return place.authority[-1] or None


def local_file(store: Store) -> Callable[[str], str] | None:
    """For a store on the local disk, store path -> its file (``native_path``); ``None`` for any other store."""
    return store.native_path if store_kind(store) == "local" else None


def native_root(store: Store) -> str | None:
    """The backend's native path of *store*'s root, without ``/`` at either end (``None``: it cannot say)."""
    try:
        return store.native_path("").strip("/")
    except Exception:  # noqa: BLE001 -- a store that cannot say where it is
        return None


_places: dict[int, tuple[Location | None, weakref.ref[Store]]] = {}
"""``id(store)`` -> ``(physical location of its root, weak reference)``; an entry goes when its store does."""


def _place(store: Store) -> Location | None:
    """Where *store*'s root is, looked up once per store: it is on every call's path.

    Keyed by ``id()``: ``Store.__hash__`` and ``__eq__`` are Python code, a plain ``dict`` lookup is not.
    """
    place = _places.get(id(store))
    if place is not None:
        return place[0]
    where = physical(store, "")
    key = id(store)
    _places[key] = (where, weakref.ref(store, lambda _: _places.pop(key, None)))
    return where


def _root(store: Store) -> str:
    place = _place(store)
    return "" if place is None else place.path


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
    (other kinds, other buckets or servers) are remembered as such, and two store
    paths are compared only when their last segments match (the same store
    file has the same name; only local files have other names, through links).

    Raises:
        SameFileError: Naming both ends, before anything is opened for writing.
    """
    if (id(src_store), id(dst_store)) in _apart:
        return
    src_place = _LOCAL if src_store is None else _place(src_store)
    dst_place = _LOCAL if dst_store is None else _place(dst_store)
    if src_place is None or dst_place is None or src_place.kind != dst_place.kind:
        if src_store is not None and dst_store is not None:
            _remember_apart(src_store, dst_store)
        return
    if src_place.kind == "local":
        same = _same_local_file(_native(src_store, src_path), _native(dst_store, dst_path))
    else:
        assert src_store is not None
        assert dst_store is not None
        place = src_place.same_place(dst_place)
        if place is None:  # a kind that names no place (memory): the same only through the same backend
            place = same_backend(src_store, dst_store)
        if not place:
            _remember_apart(src_store, dst_store)
            return
        if src_path.rstrip("/").rpartition("/")[2] != dst_path.rstrip("/").rpartition("/")[2]:
            return
        same = _native(src_store, src_path).strip("/") == _native(dst_store, dst_path).strip("/")
    if same:
        source, destination = Endpoint(src_store, src_path), Endpoint(dst_store, dst_path)
        raise SameFileError(operation, source.describe(), destination.describe())


_LOCAL = Location("local", (), "")
"""The place of a local path (the path itself is compared file by file)."""


_apart: dict[tuple[int, int], tuple[weakref.ref[Store], weakref.ref[Store]]] = {}
"""``(id(source store), id(destination store))`` of the pairs that can never hold the same file:
of different kinds, or (not local) in different places (buckets, servers, backends).
An entry goes when either store does."""


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
