"""What travels to worker processes: stores (by value, or as registry config plus name) and plugin settings.

A tree run on a process-based executor (``ProcessPoolExecutor``, a Dask
``distributed.Client``) sends each file to another process, possibly on
another machine. The stores and plugin settings go with it, as plain,
picklable specs; each worker process turns a spec back into a ``Store`` or a
plugin manager **once** and keeps it for the files that follow.

* A store built with :func:`registry_store` (or declared with
  :func:`travels_as`) travels as its **unresolved** registry config (the
  ``${VAR}`` references, never their values) plus its name; the worker
  resolves the variables from its own environment (``resolve_env``) and
  builds the store. A ``child()`` of such a store (at any depth) travels as
  the same config and name plus its sub-path. No secret is in the task payload.
* Any other store travels pickled, as it is (local, S3, SFTP stores built by
  value pickle), unless its pickle would carry credentials (a remote-store
  ``Secret``, or a credential field such as an S3 ``secret`` or an SFTP
  ``password``/``pkey`` that is set): such a store is refused
  (:class:`CannotTravel`) unless the caller opted in with
  :func:`allow_pickled` for that store.
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
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from remote_store import Registry, RegistryConfig, Secret, Store, resolve_env

from remote_store_transfer.errors import TransferError
from remote_store_transfer.locations import native_root, store_kind

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "THREAD_UNSAFE_KINDS",
    "CannotTravel",
    "SharedStore",
    "StoreSpec",
    "allow_pickled",
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


_V = TypeVar("_V")


class _PerStore(Generic[_V]):
    """A value per store *object* (identity, not ``Store.__eq__``), dropped when that object goes."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref[Store], _V]] = {}
        self._lock = threading.RLock()  # re-entrant: a weakref callback may run inside a locked block

    def set(self, store: Store, value: _V) -> None:
        key = id(store)

        def gone(ref: weakref.ref[Store]) -> None:
            with self._lock:
                if self._items.get(key, (None,))[0] is ref:
                    del self._items[key]

        with self._lock:
            self._items[key] = (weakref.ref(store, gone), value)

    def get(self, store: Store) -> _V | None:
        with self._lock:
            item = self._items.get(id(store))
        return item[1] if item is not None and item[0]() is store else None

    def live(self) -> list[tuple[Store, _V]]:
        with self._lock:
            items = list(self._items.values())
        return [(store, value) for ref, value in items if (store := ref()) is not None]


_origins: _PerStore[tuple[dict[str, Any], str, str]] = _PerStore()
"""A declared store -> ``(unresolved registry config, store name, child() sub-path below that store)``."""


def registry_store(config: str | os.PathLike[str] | Mapping[str, Any], name: str) -> Store:
    """Store *name* of a remote-store registry config, built so that it can travel without its secrets.

    *config* is a TOML file (read with ``tomllib``: a ``[backends.*]`` and
    ``[stores.*]`` file as ``RegistryConfig`` reads it) or a dict of the same
    shape, with ``${VAR}`` placeholders unresolved. The store is built here
    (placeholders resolved from this process's environment); when a tree
    sends files to worker processes, the unresolved config and *name* go
    instead of the store, and each worker builds the store from its own
    environment, once. Its ``child()`` stores (at any depth) travel the same
    way, with their sub-path.

    Raises:
        KeyError: A placeholder names an unset variable, or *name* is not a store of the config.
    """
    if isinstance(config, str | os.PathLike):
        with open(config, "rb") as fh:
            raw: dict[str, Any] = tomllib.load(fh)
    else:
        raw = json.loads(json.dumps(dict(config)))  # a deep, plain copy: it must pickle and hash
    store = Registry(RegistryConfig.from_dict(resolve_env(raw))).get_store(name)
    _declare(store, raw, name, "")
    return store


def travels_as(store: Store, config: Mapping[str, Any], name: str) -> Store:
    """Declare that *store* is store *name* of the registry *config* (``${VAR}`` placeholders unresolved).

    When a tree sends files to worker processes, *store* then travels as
    *config* plus *name* (see :func:`registry_store`, which builds and
    declares in one call). Returns *store*.
    """
    _declare(store, json.loads(json.dumps(dict(config))), name, "")  # a deep, plain copy: it must pickle and hash
    return store


class _DeclaredStore(Store):
    """A declared store: each ``child()`` of it is declared too, when it is made (it travels as config, name and
    sub-path even after its parent is gone, as in ``registry_store(...).child("x")``)."""

    def child(self, subpath: str) -> Store:
        child = super().child(subpath)
        origin = _origins.get(self)
        sub = _sub_path(self, child) if origin is not None else None
        if origin is not None and sub is not None:
            raw, name, base = origin
            _declare(child, raw, name, f"{base}/{sub}" if base and sub else base or sub)
        return child


def _declare(store: Store, raw: dict[str, Any], name: str, sub: str) -> None:
    """Remember that *store* travels as the registry config *raw*, *name* and the ``child()`` path *sub*."""
    _origins.set(store, (raw, name, sub))
    if type(store) is Store:  # a subclass of the caller's keeps its class; its children are found while it lives
        store.__class__ = _DeclaredStore  # the same object, same layout: its child() now declares


def _sub_path(parent: Store, store: Store) -> str | None:
    """The path of *store* below *parent* when *store* is ``parent.child(...)`` (any depth; ``""``: the same).

    Public API only, as ``locations.same_backend``: the native roots give the
    candidate sub-path, ``Store.__eq__`` (same backend object, same root) proves it.
    """
    if parent == store:
        return ""
    outer, inner = native_root(parent), native_root(store)
    if outer is None or inner is None or not inner.startswith(outer + "/" if outer else ""):
        return None
    sub = inner[len(outer) :].strip("/")
    try:
        return sub if sub and parent.child(sub) == store else None
    except Exception:  # noqa: BLE001 -- a sub-path child() refuses: not this store's child
        return None


def _origin(store: Store) -> tuple[dict[str, Any], str, str] | None:
    """``(config, name, sub-path)`` when *store* is a declared store or a ``child()`` of a living one, else ``None``."""
    exact = _origins.get(store)
    if exact is not None:
        return exact
    found: list[tuple[str, dict[str, Any], str]] = []
    for parent, (raw, name, base) in _origins.live():
        sub = _sub_path(parent, store)
        if sub is not None:
            found.append((f"{base}/{sub}" if base and sub else base or sub, raw, name))
    if not found:
        return None
    sub, raw, name = min(found, key=lambda f: len(f[0]))  # the nearest declared ancestor
    return raw, name, sub


def _build(raw: dict[str, Any], name: str, sub: str) -> tuple[Store, Store]:
    """``(registry store, the store at sub-path sub of it)``: the first owns the connection, close it."""
    owner = Registry(RegistryConfig.from_dict(resolve_env(raw))).get_store(name)
    return owner, owner.child(sub) if sub else owner


_allowed: _PerStore[bool] = _PerStore()


def allow_pickled(store: Store) -> Store:
    """Let *store* travel to worker processes pickled, **with its credentials** in every task. Returns *store*.

    A tree on a process-based executor refuses (:class:`CannotTravel`) a
    store whose pickle holds credentials, unless it comes from
    :func:`registry_store` (it then travels as config and name). This is the
    explicit way out, for this store only (not its ``child()`` stores): the
    tasks, the scheduler and whatever logs them then see the secret.
    """
    _allowed.set(store, True)
    return store


_CREDENTIAL_FIELDS = frozenset(
    {
        "secret",
        "password",
        "passphrase",
        "pkey",
        "private_key",
        "token",
        "session_token",
        "account_key",
        "sas_token",
        "connection_string",
        "client_secret",
        "client_certificate",
        "aws_secret_access_key",
        "aws_session_token",
        "access_token",
        "refresh_token",
        "api_key",
        "authorization",
    }
)
"""Field names (leading ``_`` ignored) whose set value is a credential: remote-store's sensitive option names
(its ``Secret``-wrapped ones), as its backends keep them after revealing, and the names their clients use."""


class _SecretProbe(pickle.Pickler):
    """Pickles as usual, noting every credential the pickle would carry (``found``: where, never the value).

    Sees each object's reduction: a remote-store ``Secret``, or a state or
    keyword dict with a credential field (:data:`_CREDENTIAL_FIELDS`) that is set.
    """

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, pickle.DEFAULT_PROTOCOL)
        self.found: list[str] = []

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, Secret):
            self.found.append("a Secret")
        elif not isinstance(obj, type) and not callable(obj):
            with contextlib.suppress(Exception):  # an object that cannot say: pickle judges it as usual
                reduced = obj.__reduce_ex__(pickle.DEFAULT_PROTOCOL)  # the C Pickler has no .proto
                if isinstance(reduced, tuple):
                    self._scan(type(obj).__qualname__, reduced[1:3], 0)
        return NotImplemented

    def _scan(self, owner: str, value: object, depth: int) -> None:
        """Note the credential fields in the plain containers of *value* (objects get their own call)."""
        if depth > 4:  # deeper plain nesting is not how a backend keeps its credentials
            return
        if isinstance(value, dict):
            for field_name, item in value.items():
                if (
                    isinstance(field_name, str)
                    and field_name.lstrip("_").lower() in _CREDENTIAL_FIELDS
                    and item is not None
                    and item != ""
                ):
                    self.found.append(f"{owner}.{field_name}")
                self._scan(owner, item, depth + 1)
        elif isinstance(value, list | tuple):
            for item in value:
                self._scan(owner, item, depth + 1)


def _probe(store: Store) -> tuple[bytes, list[str]]:
    """``(the pickled store, the credentials in it)``."""
    buffer = io.BytesIO()
    probe = _SecretProbe(buffer)
    probe.dump(store)
    return buffer.getvalue(), probe.found


def _refuse_secrets(store: Store, role: str, found: list[str]) -> None:
    """Raise :class:`CannotTravel` when *store* would carry credentials and the caller did not opt in."""
    if not found:
        return
    if _allowed.get(store):
        return
    raise CannotTravel(
        f"the {role} {store!r} would travel to worker processes with its credentials "
        f"({', '.join(sorted(set(found)))}) in every task: build it with remote_store_transfer.registry_store() "
        "(it then travels as its config and name, the workers resolve the secrets), use threads, "
        "or opt in with remote_store_transfer.allow_pickled(store)"
    )


@dataclass(frozen=True)
class StoreSpec:
    """How one store travels: ``registry`` (unresolved config + name) or ``pickle`` (the store itself).

    Attributes:
        key: Identifies the store across tasks (a worker builds each key once).
        name: The store's description for messages (``repr(store)``: never credentials).
        config: The unresolved registry config (``registry``), else ``None``.
        store_name: The store's name in *config* (``registry``), else ``None``.
        payload: The pickled store (``pickle``), else ``None``.
        sub_path: For ``registry``: the ``child()`` path below store *store_name* (``""``: that store).
    """

    key: str
    name: str
    config: dict[str, Any] | None = None
    store_name: str | None = None
    payload: bytes | None = None
    sub_path: str = ""


def store_spec(store: Store, role: str) -> StoreSpec:
    """The spec that sends *store* (the tree's *role*: ``"source"`` or ``"destination"``) to workers.

    Raises:
        CannotTravel: A memory store, a store that does not pickle, or one whose pickle would carry
            credentials (unless :func:`allow_pickled`).
    """
    name = repr(store)
    origin = _origin(store)
    if origin is not None:
        raw, store_name, sub = origin
        digest = hashlib.sha256(json.dumps([raw, store_name], sort_keys=True).encode()).hexdigest()
        key = f"registry-{digest[:24]}" + (f":{sub}" if sub else "")
        return StoreSpec(key, name, config=raw, store_name=store_name, sub_path=sub)
    if store_kind(store) == "memory":
        raise CannotTravel(
            f"the {role} {name} is a memory store: it cannot travel to worker processes (each would get a copy, "
            "and this process's store would stay unchanged); use threads (no executor, or a ThreadPoolExecutor)"
        )
    try:
        payload, found = _probe(store)
    except Exception as exc:
        raise CannotTravel(
            f"the {role} {name} cannot travel to worker processes: it does not pickle ({type(exc).__name__}: {exc}); "
            "build it with remote_store_transfer.registry_store() or use threads"
        ) from exc
    _refuse_secrets(store, role, found)
    return StoreSpec(f"pickle-{hashlib.sha256(payload).hexdigest()[:24]}", name, payload=payload)


class _Pickler(pickle.Pickler):
    """Pickles a :func:`registry_store` store (or a ``child()`` of one) as its :class:`StoreSpec`, never by value.

    Any other store is pickled by value, once checked for credentials (:func:`store_spec`'s refusal).
    """

    def persistent_id(self, obj: object) -> StoreSpec | None:
        if isinstance(obj, Store):
            if _origin(obj) is not None:
                return store_spec(obj, "store")
            try:
                found = _probe(obj)[1]
            except Exception:  # noqa: BLE001 -- a store that does not pickle: the outer pickle says why
                return None
            _refuse_secrets(obj, "store", found)
        return None


class _Unpickler(pickle.Unpickler):
    """Opens the stores that :class:`_Pickler` sent as specs (once per process, :func:`open_store`)."""

    def persistent_load(self, pid: Any) -> Store:
        if not isinstance(pid, StoreSpec):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return open_store(pid)


def dumps(value: object) -> bytes:
    """Pickle *value* (plugin settings, plugins) with every :func:`registry_store` store in it as config + name.

    Other stores in it are pickled by value; one that would carry credentials is refused.

    Raises:
        CannotTravel: A store in *value* would carry credentials (unless :func:`allow_pickled`).
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
                owner_key = spec.key.partition(":")[0]  # the registry store itself: its children share it
                owner = _opened.get(owner_key)
                if owner is None:
                    owner = _opened[owner_key] = _build(spec.config, spec.store_name, "")[0]
                store = owner.child(spec.sub_path) if spec.sub_path else owner
            _opened[spec.key] = store
        return store


THREAD_UNSAFE_KINDS = frozenset({"sftp"})
"""Store kinds whose backend must not be used from two threads at once (remote-store's SFTP backend keeps
one paramiko connection, documented as not thread-safe)."""


class SharedStore:
    """One end of a tree as the worker threads use it: safely, whatever the store's backend.

    A thread-safe store is shared as it is. A store whose backend is not
    thread-safe (:data:`THREAD_UNSAFE_KINDS`) is either opened once per worker
    thread, when it came from :func:`registry_store` or is a ``child()`` of
    such a store (its config says how), or else shared behind a lock, so one
    thread uses it at a time (files on it then move one at a time).

    Args:
        store: The store (``None`` for a local folder).
    """

    def __init__(self, store: Store | None) -> None:
        self.store = store
        unsafe = store is not None and store_kind(store) in THREAD_UNSAFE_KINDS
        origin = _origin(store) if unsafe and store is not None else None
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
            owner, clone = _build(*self._origin)
            self._local.store = clone
            with self._clones_lock:
                self._clones.append(owner)  # the registry store itself: a child() never closes a backend
        return clone

    def close(self) -> None:
        """Close the per-thread stores opened for the tree (the caller's store stays open)."""
        with self._clones_lock:
            clones, self._clones = self._clones, []
        for clone in clones:
            with contextlib.suppress(Exception):  # closing is best effort; the tree's result stands
                clone.close()
