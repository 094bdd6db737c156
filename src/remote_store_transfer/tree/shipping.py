"""What travels to worker processes: stores (by value, or as registry config plus name) and plugin settings.

A tree run on a process-based executor (``ProcessPoolExecutor``, a Dask
``distributed.Client``) sends each file to another process, possibly on
another machine. The stores and plugin settings go with it, as plain,
picklable specs; each worker process turns a spec back into a ``Store`` or a
plugin manager **once** and keeps it for the files that follow.

* A store built with :func:`registry_store` travels as its **unresolved**
  registry config (the ``${VAR}`` references, never their values) plus its
  name; the worker resolves the variables from its own environment
  (``resolve_env``) and builds the store. No secret is in the task payload.
* Any other store travels pickled, as it is (local, S3, SFTP stores built by
  value pickle). Beware: remote-store's ``Secret`` pickles its raw value, so
  such a payload carries the store's credentials.
* A memory store cannot travel: a worker would get a copy and the caller's
  store would stay empty. It is refused, by name, before any file moves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import threading
import tomllib
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remote_store import Registry, RegistryConfig, resolve_env

from remote_store_transfer.errors import TransferError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from remote_store import Store

__all__ = [
    "THREAD_UNSAFE_KINDS",
    "CannotTravel",
    "SharedStore",
    "StoreSpec",
    "dumps",
    "loads",
    "open_store",
    "registry_store",
    "store_kind",
    "store_spec",
    "travels_as",
]


class CannotTravel(TransferError):
    """A store, plugin or setting that a tree needs in worker processes cannot be sent there.

    Raised before any file moves; the message names what and why.
    """


_origins: weakref.WeakKeyDictionary[Store, tuple[dict[str, Any], str]] = weakref.WeakKeyDictionary()
_origins_lock = threading.Lock()


def registry_store(config: str | os.PathLike[str] | Mapping[str, Any], name: str) -> Store:
    """Store *name* of a remote-store registry config, built so that it can travel without its secrets.

    *config* is a TOML file (read with ``tomllib``: a ``[backends.*]`` and
    ``[stores.*]`` file as ``RegistryConfig`` reads it) or a dict of the same
    shape, with ``${VAR}`` placeholders unresolved. The store is built here
    (placeholders resolved from this process's environment); when a tree
    sends files to worker processes, the unresolved config and *name* go
    instead of the store, and each worker builds the store from its own
    environment, once.

    Raises:
        KeyError: A placeholder names an unset variable, or *name* is not a store of the config.
    """
    if isinstance(config, str | os.PathLike):
        with open(config, "rb") as fh:
            raw: dict[str, Any] = tomllib.load(fh)
    else:
        raw = json.loads(json.dumps(dict(config)))  # a deep, plain copy: it must pickle and hash
    store = Registry(RegistryConfig.from_dict(resolve_env(raw))).get_store(name)
    _declare(store, raw, name)
    return store


def travels_as(store: Store, config: Mapping[str, Any], name: str) -> Store:
    """Declare that *store* is store *name* of the registry *config* (``${VAR}`` placeholders unresolved).

    When a tree sends files to worker processes, *store* then travels as
    *config* plus *name* (see :func:`registry_store`, which builds and
    declares in one call). Returns *store*.
    """
    _declare(store, json.loads(json.dumps(dict(config))), name)  # a deep, plain copy: it must pickle and hash
    return store


def _declare(store: Store, raw: dict[str, Any], name: str) -> None:
    """Remember that *store* travels as the registry config *raw* plus *name*."""
    with _origins_lock:
        _origins[store] = (raw, name)


@dataclass(frozen=True)
class StoreSpec:
    """How one store travels: ``registry`` (unresolved config + name) or ``pickle`` (the store itself).

    Attributes:
        key: Identifies the store across tasks (a worker builds each key once).
        name: The store's description for messages (``repr(store)``: never credentials).
        config: The unresolved registry config (``registry``), else ``None``.
        store_name: The store's name in *config* (``registry``), else ``None``.
        payload: The pickled store (``pickle``), else ``None``.
    """

    key: str
    name: str
    config: dict[str, Any] | None = None
    store_name: str | None = None
    payload: bytes | None = None


def store_spec(store: Store, role: str) -> StoreSpec:
    """The spec that sends *store* (the tree's *role*: ``"source"`` or ``"destination"``) to workers.

    Raises:
        CannotTravel: A memory store, or a store that does not pickle.
    """
    name = repr(store)
    with _origins_lock:
        origin = _origins.get(store)
    if origin is not None:
        raw, store_name = origin
        digest = hashlib.sha256(json.dumps([raw, store_name], sort_keys=True).encode()).hexdigest()
        return StoreSpec(f"registry-{digest[:24]}", name, config=raw, store_name=store_name)
    if store_kind(store) == "memory":
        raise CannotTravel(
            f"the {role} {name} is a memory store: it cannot travel to worker processes (each would get a copy, "
            "and this process's store would stay unchanged); use threads (no executor, or a ThreadPoolExecutor)"
        )
    try:
        payload = pickle.dumps(store)
    except Exception as exc:
        raise CannotTravel(
            f"the {role} {name} cannot travel to worker processes: it does not pickle ({type(exc).__name__}: {exc}); "
            "build it with remote_store_transfer.registry_store() or use threads"
        ) from exc
    return StoreSpec(f"pickle-{hashlib.sha256(payload).hexdigest()[:24]}", name, payload=payload)


class _Pickler(pickle.Pickler):
    """Pickles a store built with :func:`registry_store` as its :class:`StoreSpec` (config + name), never by value."""

    def persistent_id(self, obj: object) -> StoreSpec | None:
        from remote_store import Store  # noqa: PLC0415 -- a cheap lookup of a class already imported

        if isinstance(obj, Store):
            with _origins_lock:
                known = obj in _origins
            if known:
                return store_spec(obj, "setting")
        return None


class _Unpickler(pickle.Unpickler):
    """Opens the stores that :class:`_Pickler` sent as specs (once per process, :func:`open_store`)."""

    def persistent_load(self, pid: Any) -> Store:
        if not isinstance(pid, StoreSpec):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return open_store(pid)


def dumps(value: object) -> bytes:
    """Pickle *value* (plugin settings, plugins) with every :func:`registry_store` store in it as config + name.

    Other stores in it are pickled by value, with their credentials.
    """
    buffer = io.BytesIO()
    _Pickler(buffer).dump(value)
    return buffer.getvalue()


def loads(payload: bytes) -> Any:
    """Unpickle what :func:`dumps` made, opening its stores in this process."""
    return _Unpickler(io.BytesIO(payload)).load()


_opened: dict[str, Store] = {}
_opened_lock = threading.Lock()


def open_store(spec: StoreSpec) -> Store:
    """The store of *spec* in this process: built on first use, then reused (once per worker, not per file)."""
    with _opened_lock:
        store = _opened.get(spec.key)
        if store is None:
            if spec.payload is not None:
                store = pickle.loads(spec.payload)
            else:
                assert spec.config is not None
                assert spec.store_name is not None
                store = Registry(RegistryConfig.from_dict(resolve_env(spec.config))).get_store(spec.store_name)
            _opened[spec.key] = store
        return store


THREAD_UNSAFE_KINDS = frozenset({"sftp"})
"""Store kinds whose backend must not be used from two threads at once (remote-store's SFTP backend keeps
one paramiko connection, documented as not thread-safe)."""


def store_kind(store: Store) -> str | None:
    """The backend kind of *store* (``"local"``, ``"s3"``, ``"sftp"``, ``"memory"``...), from ``resolve()``."""
    try:
        return store.resolve("").kind
    except Exception:  # noqa: BLE001 -- a store that cannot say: treated as an unknown kind
        return None


class SharedStore:
    """One end of a tree as the worker threads use it: safely, whatever the store's backend.

    A thread-safe store is shared as it is. A store whose backend is not
    thread-safe (:data:`THREAD_UNSAFE_KINDS`) is either opened once per worker
    thread, when it came from :func:`registry_store` (its config says how),
    or else shared behind a lock, so one thread uses it at a time (files on
    it then move one at a time).

    Args:
        store: The store (``None`` for a local folder).
    """

    def __init__(self, store: Store | None) -> None:
        self.store = store
        unsafe = store is not None and store_kind(store) in THREAD_UNSAFE_KINDS
        with _origins_lock:
            origin = _origins.get(store) if unsafe and store is not None else None
        self._origin = origin
        self.lock: threading.Lock | None = threading.Lock() if unsafe and origin is None else None
        self._local = threading.local()
        self._clones: list[Store] = []
        self._clones_lock = threading.Lock()

    @property
    def per_thread(self) -> bool:
        """``True`` when each worker thread opens its own store (a non-thread-safe store from a registry)."""
        return self._origin is not None

    def get(self) -> Store | None:
        """The store for the calling thread (its own connection, when the store is opened per thread)."""
        if self._origin is None:
            return self.store
        clone: Store | None = getattr(self._local, "store", None)
        if clone is None:
            raw, name = self._origin
            clone = Registry(RegistryConfig.from_dict(resolve_env(raw))).get_store(name)
            self._local.store = clone
            with self._clones_lock:
                self._clones.append(clone)
        return clone

    def close(self) -> None:
        """Close the per-thread stores opened for the tree (the caller's store stays open)."""
        with self._clones_lock:
            clones, self._clones = self._clones, []
        for clone in clones:
            with contextlib.suppress(Exception):  # closing is best effort; the tree's result stands
                clone.close()
