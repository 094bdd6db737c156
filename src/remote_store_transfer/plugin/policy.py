"""The built-in ``policy`` plugin: rules checked in ``pre_transfer``, before any byte moves.

Each violated rule raises :class:`~remote_store_transfer.TransferDenied`
naming the rule and the reason. Rules (all optional, see
``docs/plugins/policy.md``):

* ``max_size``: the largest file, in bytes, that may move. Known for an
  upload (the local file's size); for a download or a transfer the source
  store is asked (``store.get_file_info``) unless ``check_remote_size`` is off.
* ``read_only``: stores that nothing may be uploaded or transferred into.
* ``deny_overwrite``: refuse every call made with ``overwrite=True``.
* ``upload`` / ``download`` / ``transfer``: ``allow`` and ``deny`` patterns
  for the store paths of that operation.

``pre_transfer`` is ``tryfirst``, so a denied call starts no span and logs no
"started" record; ``post_transfer`` of the other plugins still runs and
records the denial.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from remote_store import RemotePath, Store

from remote_store_transfer.errors import TransferDenied
from remote_store_transfer.plugin import hookimpl

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from remote_store_transfer.context import Endpoint, TransferContext

__all__ = ["NAME", "OPERATIONS", "PathRules", "PolicyPlugin", "store_location"]

NAME = "policy"
OPERATIONS = ("upload", "download", "transfer")


def store_location(store: Store, path: str = "") -> str:
    """Where *path* of *store* physically is: ``"<backend>:<native path>"``.

    For example ``"local:/srv/archive/a.csv"``, ``"s3:prod-bucket/a.csv"``,
    ``"memory:a.csv"``. Made from the public ``Store.resolve()``; this is what
    ``read_only`` patterns are matched against.
    """
    plan = store.resolve(path)
    return f"{plan.backend}:{plan.native_path}"


def _normalize(path: str) -> str:
    try:
        return str(RemotePath(path))
    except ValueError:  # invalid paths are the store's to reject
        return path


@dataclass(frozen=True)
class PathRules:
    """``allow`` / ``deny`` patterns for the store paths of one operation.

    Patterns are :func:`fnmatch.fnmatchcase` patterns matched against the
    normalized store-relative path (``"reports/q1.csv"``: no leading ``/``,
    no ``./``); ``*`` also matches ``/``. A path matching a ``deny`` pattern
    is refused; when ``allow`` is not empty, a path must match one of its
    patterns.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @classmethod
    def make(cls, value: PathRules | Mapping[str, Iterable[str]] | None) -> PathRules:
        """Build from a ``PathRules``, a ``{"allow": [...], "deny": [...]}`` mapping, or ``None``."""
        if value is None:
            return cls()
        if isinstance(value, PathRules):
            return value
        unknown = set(value) - {"allow", "deny"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)}: expected 'allow' and/or 'deny'")
        return cls(_patterns(value.get("allow", ()), "allow"), _patterns(value.get("deny", ()), "deny"))


def _patterns(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        raise TypeError(f"{key} must be a list of strings, got {value!r}")
    return tuple(value)


class PolicyPlugin:
    """Refuse transfers that break the configured rules (raises ``TransferDenied``).

    Args:
        max_size: Largest allowed file in bytes (``None``: no limit).
        check_remote_size: For ``download`` and ``transfer`` with
            *max_size* set, ask the source store for the file's size
            (one ``get_file_info`` call). When off, only uploads (whose size
            is known locally) are checked.
        read_only: Stores nothing may be written into by ``upload`` or
            ``transfer``. Each entry is a ``Store`` object (matches that store,
            an equal one, and stores rooted below it) or a pattern matched
            against :func:`store_location` of the destination file and of the
            destination store's root (``"s3:prod-bucket/*"``,
            ``"local:/srv/archive*"``).
        deny_overwrite: Refuse every call made with ``overwrite=True``.
        upload: Path rules for uploads (the destination path).
        download: Path rules for downloads (the source path).
        transfer: Path rules for transfers (both the source and the destination path).
    """

    def __init__(
        self,
        *,
        max_size: int | None = None,
        check_remote_size: bool = True,
        read_only: Iterable[Store | str] = (),
        deny_overwrite: bool = False,
        upload: PathRules | Mapping[str, Iterable[str]] | None = None,
        download: PathRules | Mapping[str, Iterable[str]] | None = None,
        transfer: PathRules | Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0):
            raise ValueError(f"max_size must be a non-negative integer (bytes), got {max_size!r}")
        if isinstance(read_only, str | Store):
            read_only = [read_only]
        entries = list(read_only)
        for entry in entries:
            if not isinstance(entry, str | Store):
                raise TypeError(f"read_only entries must be Store objects or patterns, got {entry!r}")
        self.max_size = max_size
        self.check_remote_size = bool(check_remote_size)
        self.read_only_patterns = tuple(e for e in entries if isinstance(e, str))
        self.read_only_stores = tuple(e for e in entries if isinstance(e, Store))
        self.deny_overwrite = bool(deny_overwrite)
        self.rules = {
            "upload": PathRules.make(upload),
            "download": PathRules.make(download),
            "transfer": PathRules.make(transfer),
        }

    def __repr__(self) -> str:
        read_only = [*self.read_only_patterns, *self.read_only_stores]
        return (
            f"PolicyPlugin(max_size={self.max_size!r}, read_only={read_only!r}, "
            f"deny_overwrite={self.deny_overwrite}, rules={self.rules!r})"
        )

    @hookimpl(tryfirst=True)
    def pre_transfer(self, context: TransferContext) -> None:
        """Check every rule; raise ``TransferDenied`` on the first violation."""
        transfer = context.describe()
        if self.deny_overwrite and context.overwrite:
            raise TransferDenied("deny_overwrite", "calls with overwrite=True are not allowed", transfer=transfer)
        operation = context.operation
        if operation in ("upload", "transfer"):
            self._check_read_only(context.destination, transfer)
        rules = self.rules[operation]
        if rules.allow or rules.deny:
            ends = {
                "upload": (context.destination,),
                "download": (context.source,),
                "transfer": (context.source, context.destination),
            }[operation]
            for end in ends:
                self._check_path(operation, rules, end.path, transfer)
        if self.max_size is not None:
            self._check_size(context, self.max_size, transfer)

    def _check_read_only(self, destination: Endpoint, transfer: str) -> None:
        store = destination.store
        if store is None or not (self.read_only_patterns or self.read_only_stores):
            return
        location = store_location(store, destination.path)
        root = store_location(store)
        for pattern in self.read_only_patterns:
            if fnmatchcase(location, pattern) or fnmatchcase(root, pattern):
                raise TransferDenied(
                    "read_only",
                    f"destination {location} is in a read-only store (pattern {pattern!r})",
                    transfer=transfer,
                )
        for ro in self.read_only_stores:
            ro_root = store_location(ro)
            below = not ro_root.endswith(":") and location.startswith(ro_root.rstrip("/") + "/")
            if store == ro or below:
                raise TransferDenied("read_only", f"destination store {ro!r} is read-only", transfer=transfer)

    @staticmethod
    def _check_path(operation: str, rules: PathRules, path: str, transfer: str) -> None:
        normalized = _normalize(path)
        for pattern in rules.deny:
            if fnmatchcase(normalized, pattern):
                raise TransferDenied(
                    f"{operation}.deny", f"path {normalized!r} matches denied pattern {pattern!r}", transfer=transfer
                )
        if rules.allow and not any(fnmatchcase(normalized, p) for p in rules.allow):
            raise TransferDenied(
                f"{operation}.allow",
                f"path {normalized!r} matches none of the allowed patterns {list(rules.allow)!r}",
                transfer=transfer,
            )

    def _check_size(self, context: TransferContext, limit: int, transfer: str) -> None:
        size = context.size
        source = context.source
        if size is None and self.check_remote_size and source.store is not None:
            size = context.size = source.store.get_file_info(source.path).size  # the core also checks it
        if size is not None and size > limit:
            raise TransferDenied("max_size", f"size {size} bytes exceeds the limit of {limit} bytes", transfer=transfer)
