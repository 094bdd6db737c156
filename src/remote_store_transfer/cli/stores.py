"""Named stores for the command line: ``NAME:PATH`` arguments resolved through a remote-store registry.

A location on the command line is either a bare local path (``report.csv``,
``/tmp/x``, ``./odd:name``) or ``NAME:PATH``, where ``NAME`` is a store of the
registry TOML given by ``--config`` or ``REMOTE_STORE_TRANSFER_STORES``
(read with :meth:`remote_store.RegistryConfig.from_toml`, ``${VAR}``
placeholders resolved from the environment).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from remote_store import Registry, RegistryConfig, resolve_env

from remote_store_transfer.tree.shipping import travels_as

if TYPE_CHECKING:
    from remote_store import Store

__all__ = ["STORES_ENV", "Location", "StoreLookupError", "Stores", "parse_location"]

STORES_ENV = "REMOTE_STORE_TRANSFER_STORES"
"""Environment variable naming the registry TOML when ``--config`` is not given."""

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


class Stores:
    """The stores of one command: a lazily loaded :class:`remote_store.Registry`.

    Args:
        config: Path of the registry TOML, or ``None`` to use ``$REMOTE_STORE_TRANSFER_STORES``.
    """

    def __init__(self, config: str | None) -> None:
        self.config = config if config else (os.environ.get(STORES_ENV) or None)
        self._registry: Registry | None = None
        self._raw: dict[str, Any] = {}
        self._names: list[str] = []

    def _load(self) -> Registry:
        if self._registry is not None:
            return self._registry
        if self.config is None:
            raise StoreLookupError(f"no store registry: give --config FILE or set {STORES_ENV} to a registry TOML file")
        try:
            with open(self.config, "rb") as fh:
                self._raw = tomllib.load(fh)  # unresolved: what travels to worker processes (--dask)
            config = RegistryConfig.from_dict(resolve_env(self._raw))
            registry = Registry(config)
        except FileNotFoundError as exc:
            raise StoreLookupError(f"store registry {self.config} does not exist") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:  # tomllib.TOMLDecodeError is a ValueError
            detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # KeyError's str() adds quotes
            raise StoreLookupError(f"store registry {self.config} is invalid: {detail}") from exc
        self._names = sorted(config.stores)
        self._registry = registry
        return registry

    def get(self, name: str, where: str | None = None) -> Store:
        """The store called *name* (*where*: the argument that named it, for messages).

        Raises:
            StoreLookupError: No registry is configured, it cannot be read,
                *name* is not in it (the message lists the names that are), or
                its backend cannot be built.
        """
        try:
            registry = self._load()
        except StoreLookupError as exc:
            exc.where = where
            raise
        if name not in self._names:
            known = ", ".join(self._names) or "none"
            raise StoreLookupError(f"unknown store {name!r} in {self.config}; known stores: {known}", where)
        try:
            return travels_as(registry.get_store(name), self._raw, name)
        except (ValueError, TypeError) as exc:
            raise StoreLookupError(f"store {name!r} in {self.config} cannot be opened: {exc}", where) from exc

    def close(self) -> None:
        """Close every backend the registry opened."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None
