"""Named stores for the command line: ``NAME:PATH`` arguments resolved through a remote-store registry.

A location on the command line is either a bare local path (``report.csv``,
``/tmp/x``, ``./odd:name``) or ``NAME:PATH``, where ``NAME`` is a store of the
registry TOML given by ``--config`` or ``REMOTE_STORE_TRANSFER_STORES``
(read with :meth:`remote_store.RegistryConfig.from_dict`, ``${VAR}``
placeholders resolved from the environment store by store: an unset variable
fails only the stores whose table or backend table uses it). A store on a
``memory`` backend is refused: it cannot outlive one command.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from remote_store import BackendUnavailable, Capability, Registry, RegistryConfig, resolve_env

from remote_store_transfer.cli.report import Unreachable
from remote_store_transfer.tree.shipping import travels_as

if TYPE_CHECKING:
    from collections.abc import Iterable

    from remote_store import Store

__all__ = [
    "CONNECT_TIMEOUT",
    "STORES_ENV",
    "Location",
    "StoreLookupError",
    "Stores",
    "atomic_writes",
    "parse_location",
    "with_connect_timeout",
]

STORES_ENV = "REMOTE_STORE_TRANSFER_STORES"
"""Environment variable naming the registry TOML when ``--config`` is not given."""

CONNECT_TIMEOUT = 10.0
"""Seconds one connection attempt to an S3 or SFTP store may take (``--connect-timeout``) unless its registry
entry sets its own (``client_options.config_kwargs.connect_timeout``, ``timeout``)."""

_STORE_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<path>.*)$", re.DOTALL)
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class StoreLookupError(Exception):
    """A ``NAME:PATH`` argument that cannot be resolved (no registry, unknown name, bad file).

    The CLI reports it as a usage error (exit code 2).

    Attributes:
        where: The argument that could not be resolved, once known.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Location:
    """One command-line location.

    Attributes:
        text: The argument as the user typed it (used in messages).
        store: The store name, or ``None`` for a local path.
        path: The path inside the store, or the local path.
    """

    text: str
    store: str | None
    path: str

    @property
    def is_local(self) -> bool:
        """``True`` for a bare local path."""
        return self.store is None

    def with_name(self, name: str) -> Location:
        """This location with *name* appended when it names a folder (``NAME:``, ``NAME:dir/``)."""
        if self.store is None or (self.path and not self.path.endswith("/")):
            return self
        path = self.path + name
        return Location(f"{self.store}:{path}", self.store, path)


def parse_location(text: str) -> Location:
    """Split ``NAME:PATH`` into a store location; anything else is a local path.

    ``NAME`` starts with a letter or digit and holds letters, digits, ``_``,
    ``.`` and ``-``; it has at least two characters when followed by ``\\`` or
    ``/`` (so ``C:\\data`` stays a local Windows path). Write ``./a:b`` for a
    local file whose name has a colon.
    """
    match = _STORE_REF.match(text)
    if match is None or _DRIVE.match(text):
        return Location(text, None, text)
    return Location(text, match["name"], match["path"])


def with_connect_timeout(raw: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The registry *raw* with a connect timeout of *seconds* for each ``s3`` and ``sftp`` backend that sets none.

    ``s3``: botocore's ``connect_timeout`` (``options.client_options.config_kwargs``);
    ``sftp``: the backend's ``timeout`` (paramiko's connect, banner, auth and channel timeouts).
    Other backend types keep their own timeouts.
    """
    backends = raw.get("backends")
    if not isinstance(backends, dict):
        return raw
    changed: dict[str, Any] = {}
    for name, spec in backends.items():
        if not isinstance(spec, dict) or spec.get("type") not in ("s3", "sftp"):
            changed[name] = spec
            continue
        options = dict(spec.get("options") or {})
        if spec["type"] == "sftp":
            options.setdefault("timeout", seconds)
        else:
            client = dict(options.get("client_options") or {})
            config = dict(client.get("config_kwargs") or {})
            config.setdefault("connect_timeout", seconds)
            options["client_options"] = {**client, "config_kwargs": config}
        changed[name] = {**spec, "options": options}
    return {**raw, "backends": changed}


def atomic_writes(store: Store, name: str, wanted: bool) -> bool:
    """Whether writes into *store* (called *name*) go atomic: *wanted* and the store can (``ATOMIC_WRITE``).

    When *wanted* but the store cannot, one note on stderr says so and the writes go non-atomic.
    """
    if not wanted or not store.supports(Capability.WRITE):  # a store that cannot write at all fails anyway
        return False
    if store.supports(Capability.ATOMIC_WRITE):
        return True
    click.echo(
        f"remote-store-transfer: note: {name} cannot write atomically: a failure can leave a partial file", err=True
    )
    return False


class Stores:
    """The stores of one command: a lazily loaded :class:`remote_store.Registry`.

    Args:
        config: Path of the registry TOML, or ``None`` to use ``$REMOTE_STORE_TRANSFER_STORES``.
        connect_timeout: Seconds per connection attempt for S3 and SFTP stores (:func:`with_connect_timeout`).
    """

    def __init__(self, config: str | None, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.config = config if config else (os.environ.get(STORES_ENV) or None)
        self.connect_timeout = connect_timeout
        self._registry: Registry | None = None
        self._raw: dict[str, Any] = {}
        self._names: list[str] = []
        self._unresolved: dict[str, str] = {}
        self._resolved: dict[str, Any] = {}

    def _resolve(self, raw: dict[str, Any]) -> dict[str, Any]:
        """*raw* with ``${VAR}`` resolved store by store; a store that names an unset variable is left out.

        The reason of each store left out goes to ``self._unresolved`` (reported when the store is asked for).
        """
        stores = raw.get("stores")
        backends = raw.get("backends")
        if not isinstance(stores, dict) or not isinstance(backends, dict):
            return resolve_env(raw)  # not a registry: let RegistryConfig say what is wrong
        rest = resolve_env({key: value for key, value in raw.items() if key not in ("stores", "backends")})
        kept_stores: dict[str, Any] = {}
        kept_backends: dict[str, Any] = {}
        for name, table in stores.items():
            backend = table.get("backend") if isinstance(table, dict) else None
            own: dict[str, Any] = {"stores": {name: table}}
            if isinstance(backend, str) and backend in backends:
                own["backends"] = {backend: backends[backend]}
            try:
                resolved: dict[str, Any] = resolve_env(own)
            except KeyError as exc:
                self._unresolved[name] = exc.args[0] if exc.args else str(exc)
                continue
            kept_stores[name] = resolved["stores"][name]
            kept_backends.update(resolved.get("backends", {}))
        return {**rest, "backends": kept_backends, "stores": kept_stores}

    def _travels(self, name: str) -> dict[str, Any]:
        """The unresolved config of store *name* alone (and its backend): what travels to worker processes."""
        stores, backends = self._raw.get("stores"), self._raw.get("backends")
        if not isinstance(stores, dict) or not isinstance(backends, dict):
            return self._raw
        table = stores.get(name)
        backend = table.get("backend") if isinstance(table, dict) else None
        own = {key: value for key, value in self._raw.items() if key not in ("stores", "backends")}
        own["stores"] = {name: table}
        own["backends"] = {backend: backends[backend]} if isinstance(backend, str) and backend in backends else {}
        return own

    def _backend_type(self, name: str) -> object:
        stores, backends = self._raw.get("stores"), self._raw.get("backends")
        table = stores.get(name) if isinstance(stores, dict) else None
        backend = table.get("backend") if isinstance(table, dict) else None
        spec = backends.get(backend) if isinstance(backends, dict) and isinstance(backend, str) else None
        return spec.get("type") if isinstance(spec, dict) else None

    def _load(self) -> Registry:
        if self._registry is not None:
            return self._registry
        if self.config is None:
            raise StoreLookupError(f"no store registry: give --config FILE or set {STORES_ENV} to a registry TOML file")
        try:
            with open(self.config, "rb") as fh:
                # unresolved: what travels to worker processes (--dask), the connect timeout included
                self._raw = with_connect_timeout(tomllib.load(fh), self.connect_timeout)
            self._resolved = self._resolve(self._raw)
            config = RegistryConfig.from_dict(self._resolved)
            registry = Registry(config)
        except FileNotFoundError as exc:
            raise StoreLookupError(f"store registry {self.config} does not exist") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:  # tomllib.TOMLDecodeError is a ValueError
            detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # KeyError's str() adds quotes
            raise StoreLookupError(f"store registry {self.config} is invalid: {detail}") from exc
        self._names = sorted({*config.stores, *self._unresolved})
        self._registry = registry
        return registry

    def get(self, name: str, where: str | None = None) -> Store:
        """The store called *name* (*where*: the argument that named it, for messages).

        Raises:
            StoreLookupError: No registry is configured, it cannot be read,
                *name* is not in it (the message lists the names that are), or
                its backend cannot be built, its tables name an unset ``${VAR}``,
                or it is a memory store.
        """
        try:
            registry = self._load()
        except StoreLookupError as exc:
            exc.where = where
            raise
        if name not in self._names:
            known = ", ".join(self._names) or "none"
            raise StoreLookupError(f"unknown store {name!r} in {self.config}; known stores: {known}", where)
        if name in self._unresolved:
            raise StoreLookupError(f"store {name!r} in {self.config} cannot be opened: {self._unresolved[name]}", where)
        if self._backend_type(name) == "memory":
            raise StoreLookupError(
                f"store {name!r} in {self.config} is a memory store: it would be gone when this command ends "
                "(use a local, S3 or other persistent backend)",
                where,
            )
        try:
            return travels_as(registry.get_store(name), self._travels(name), name)
        except (ValueError, TypeError) as exc:
            raise StoreLookupError(f"store {name!r} in {self.config} cannot be opened: {exc}", where) from exc

    def endpoint(self, name: str) -> tuple[str, str] | None:
        """``(backend type, where it connects)`` of store *name*: an S3 endpoint URL, an SFTP ``host:port``.

        ``None`` for a store that is not in the loaded registry or whose type connects nowhere to name.
        """
        stores, backends = self._resolved.get("stores"), self._resolved.get("backends")
        table = stores.get(name) if isinstance(stores, dict) else None
        backend = table.get("backend") if isinstance(table, dict) else None
        spec = backends.get(backend) if isinstance(backends, dict) and isinstance(backend, str) else None
        if not isinstance(spec, dict):
            return None
        kind, options = spec.get("type"), spec.get("options") or {}
        if kind == "sftp":
            return "sftp", f"{options.get('host')}:{options.get('port', 22)}"
        if kind in ("s3", "s3-pyarrow"):
            url = options.get("endpoint_url")
            return str(kind), str(url) if url else f"AWS S3, bucket {options.get('bucket')}"
        return None

    def unreachable(self, error: BaseException, names: Iterable[str]) -> BaseException:
        """*error* as :class:`Unreachable` naming the endpoints of the stores *names* it may be about.

        Only a ``BackendUnavailable`` (the store could not be reached) is
        wrapped, and only when one of *names* has an endpoint of the error's
        backend type; anything else is returned as it is.
        """
        if not isinstance(error, BackendUnavailable):
            return error
        endpoints = [
            f"store {name!r} ({kind} {where})"
            for name in dict.fromkeys(names)
            if (found := self.endpoint(name)) is not None
            for kind, where in [found]
            if error.backend in (None, kind)
        ]
        return Unreachable(endpoints, error, self.connect_timeout) if endpoints else error

    def close(self) -> None:
        """Close every backend the registry opened."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None
