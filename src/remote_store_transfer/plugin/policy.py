"""The built-in ``policy`` plugin: rules checked in ``pre_transfer``, before any byte moves.

Each violated rule raises :class:`~remote_store_transfer.TransferDenied`
naming the rule and the reason. Rules (all optional, see
``docs/plugins/policy.md``):

* ``max_size``: the largest file, in bytes, that may move. Known for an
  upload (the local file's size); for a download or a transfer the source
  store is asked (``store.get_file_info``) unless ``check_remote_size`` is off.
  Also enforced on the bytes as they move (``on_chunk``): a source that grows
  after the check, or a FIFO, is stopped the moment it passes the limit.
* ``read_only``: stores that nothing may be uploaded or transferred into,
  nor deleted from by a tree's ``delete=True`` (matched on the physical
  location, real path included for local stores).
* ``deny_overwrite``: refuse every call made with ``overwrite=True`` that
  may replace a file; in a tree, only the files that replace one.
* ``upload`` / ``download`` / ``transfer``: ``allow`` and ``deny`` patterns
  for the store paths of that operation; a pattern ``"<backend>:..."`` matches
  the physical location, and ``physical=True`` makes every pattern physical.
  A deletion of ``upload_tree`` / ``transfer_tree`` is checked against the
  ``upload`` / ``transfer`` rules, on the deleted file's path.
* ``case_insensitive``: match the patterns regardless of case.

``pre_transfer`` and ``pre_delete`` are ``tryfirst``, so a denied call starts
no span and logs no "started" record; ``post_transfer`` / ``post_delete`` of
the other plugins still run and record the denial.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from remote_store import Capability, InvalidPath, RemotePath, Store

from remote_store_transfer.errors import TransferDenied
from remote_store_transfer.locations import store_location
from remote_store_transfer.plugin import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from remote_store_transfer.context import DeleteContext, Endpoint, TransferContext

__all__ = ["NAME", "OPERATIONS", "PathRules", "PolicyPlugin", "is_physical", "store_location"]

NAME = "policy"
OPERATIONS = ("upload", "download", "transfer")
_WRITERS = {"upload_tree": "upload", "transfer_tree": "transfer"}
"""The operation whose path rules a tree's deletions are checked against (its writes into the same store)."""


def _locations(store: Store, path: str) -> tuple[str, ...] | None:
    """The physical locations of *path*: as resolved, then the real one (last); ``None`` when it cannot be resolved.

    A path the store refuses (``a/../b``) is normalized lexically first, so
    that the rules see where it points; one that climbs above the store's
    root has no location.
    """
    try:
        given = store_location(store, path)
        real = store_location(store, path, real=True)
    except Exception:  # noqa: BLE001 -- remote-store refuses ".." segments: see where they point
        path = path.replace("\\", "/")  # as remote-store reads it
        if _climbs(path):
            return None
        normalized = posixpath.normpath("/" + path).lstrip("/")
        try:
            given = store_location(store, normalized)
            real = store_location(store, normalized, real=True)
        except Exception:  # noqa: BLE001 -- no location: the caller fails closed
            return None
    return (given,) if given == real else (given, real)


def _climbs(path: str) -> bool:
    """*path* goes above its starting directory (``a/../../b``)."""
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


_PHYSICAL = re.compile(r"[A-Za-z][A-Za-z0-9_+.-]*:")


def is_physical(pattern: str) -> bool:
    """*pattern* is written on a physical location: it starts with ``"<backend>:"`` (``"s3:bucket/*"``)."""
    return _PHYSICAL.match(pattern) is not None


def _normalize(path: str) -> str:
    try:
        return str(RemotePath(path))
    except (ValueError, InvalidPath):  # invalid paths are the store's to reject
        return path


@dataclass(frozen=True)
class PathRules:
    """``allow`` / ``deny`` patterns for the store paths of one operation.

    Patterns are :func:`fnmatch.fnmatchcase` patterns matched against the
    normalized store-relative path (``"reports/q1.csv"``: no leading ``/``,
    no ``./``); ``*`` also matches ``/``. A pattern starting with
    ``"<backend>:"`` (``"local:/srv/secrets/*"``, ``"s3:bucket/secrets/*"``)
    is matched against the physical location instead (see
    :func:`store_location`). A path matching a ``deny`` pattern is refused;
    when ``allow`` is not empty, a path must match one of its patterns.
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
        max_size: Largest allowed file in bytes (``None``: no limit). Checked
            before the call on the declared size, and on the bytes as they
            move: the call stops with ``TransferDenied`` as soon as more
            have been read.
        check_remote_size: For ``download`` and ``transfer`` with
            *max_size* set, ask the source store for the file's size
            (one ``get_file_info`` call) to refuse a file too big before any
            byte moves. When off, their bytes are still counted as they move
            and the call stops once the limit is passed.
        read_only: Stores nothing may be written into by ``upload`` or
            ``transfer``, nor deleted from by a tree's ``delete=True``. Each
            entry is a ``Store`` object (matches that store, an equal one,
            and stores rooted below it) or a pattern matched
            against :func:`store_location` of the destination file and of the
            destination store's root (``"s3:prod-bucket/*"``,
            ``"local:/srv/archive*"``), as given and, for local stores, as
            real paths (symlinks resolved).
        deny_overwrite: Refuse every call made with ``overwrite=True``, except
            a tree's files that replace nothing (``context.replaces`` is
            ``False``: a tree writes its new files with ``overwrite=True`` too).
            Deletions are not overwrites: ``read_only`` refuses them.
        upload: Path rules for uploads (the destination path), and for the
            deletions of ``upload_tree(delete=True)`` (the deleted path).
        download: Path rules for downloads (the source path).
        transfer: Path rules for transfers (both the source and the
            destination path), and for the deletions of ``transfer_tree(delete=True)``.
        physical: Match every path rule against the physical location of
            the file (normalized; real path for local stores) instead of the
            store-relative path, so that no ``child()`` scope, ``..``, ``./``
            or ``//`` gets around it.
        case_insensitive: Match the path rules and ``read_only`` patterns
            regardless of case.
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
        physical: bool = False,
        case_insensitive: bool = False,
    ) -> None:
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0):
            raise ValueError(f"max_size must be a non-negative integer (bytes), got {max_size!r}")
        for key, flag in (("physical", physical), ("case_insensitive", case_insensitive)):
            if not isinstance(flag, bool):
                raise TypeError(f"{key} must be a boolean, got {flag!r}")
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
        self.physical = physical
        self.case_insensitive = case_insensitive
        if max_size is not None:
            # An instance attribute, not a method: without max_size the plugin implements no on_chunk,
            # so it does not make the core wrap every stream to observe chunks.
            self.on_chunk: Callable[[TransferContext], None] = hookimpl(self._chunk_hook(max_size))

    def __repr__(self) -> str:
        read_only = [*self.read_only_patterns, *self.read_only_stores]
        return (
            f"PolicyPlugin(max_size={self.max_size!r}, read_only={read_only!r}, "
            f"deny_overwrite={self.deny_overwrite}, rules={self.rules!r}, "
            f"physical={self.physical}, case_insensitive={self.case_insensitive})"
        )

    def _match(self, name: str, pattern: str) -> bool:
        if self.case_insensitive:
            return fnmatchcase(name.casefold(), pattern.casefold())
        return fnmatchcase(name, pattern)

    @hookimpl(tryfirst=True)
    def pre_transfer(self, context: TransferContext) -> None:
        """Check every rule; raise ``TransferDenied`` on the first violation."""
        transfer = context.describe()
        if self.deny_overwrite and context.overwrite and context.replaces is not False:
            reason = (
                "calls with overwrite=True are not allowed"
                if context.replaces is None
                else "the file exists at the destination and may not be replaced"
            )
            raise TransferDenied("deny_overwrite", reason, transfer=transfer)
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
                self._check_path(operation, rules, end, transfer)
        if self.max_size is not None:
            self._check_size(context, self.max_size, transfer)

    @hookimpl(tryfirst=True)
    def pre_delete(self, context: DeleteContext) -> None:
        """A deletion writes into its store: refused if it is read-only, or where the tree's write rules refuse."""
        what = context.describe()
        self._check_read_only(context.target, what)
        operation = _WRITERS.get(context.batch.operation) if context.batch is not None else None
        if operation is not None:  # download_tree deletes local files: no store rule speaks of them
            rules = self.rules[operation]
            if rules.allow or rules.deny:
                self._check_path(operation, rules, context.target, what)

    def _chunk_hook(self, limit: int) -> Callable[[TransferContext], None]:
        def on_chunk(context: TransferContext) -> None:  # every operation: a limit holds on what moves
            moved = context.bytes_transferred
            if moved > limit:
                raise TransferDenied(
                    "max_size",
                    f"{moved} bytes read, more than the limit of {limit} bytes (the source grew or had no known size)",
                    transfer=context.describe(),
                )

        return on_chunk

    def _check_read_only(self, destination: Endpoint, transfer: str) -> None:
        store = destination.store
        if store is None or not (self.read_only_patterns or self.read_only_stores):
            return
        found = _locations(store, destination.path)  # as given and real, ".." segments resolved lexically
        if found is None:  # fail closed: where it would write cannot be told
            raise TransferDenied(
                "read_only",
                f"destination {destination.path!r} in {store!r} has no location to check against the read-only rules",
                transfer=transfer,
            )
        location, locations = found[0], set(found)
        roots = {store_location(store), store_location(store, real=True)}
        for pattern in self.read_only_patterns:
            if any(self._match(name, pattern) for name in (*locations, *roots)):
                raise TransferDenied(
                    "read_only",
                    f"destination {location} is in a read-only store (pattern {pattern!r})",
                    transfer=transfer,
                )
        for ro in self.read_only_stores:
            ro_roots = {store_location(ro), store_location(ro, real=True)}
            below = any(
                not ro_root.endswith(":") and name.startswith(ro_root.rstrip("/") + "/")
                for ro_root in ro_roots
                for name in locations
            )
            if store == ro or below:
                raise TransferDenied("read_only", f"destination store {ro!r} is read-only", transfer=transfer)

    def _check_path(self, operation: str, rules: PathRules, end: Endpoint, transfer: str) -> None:
        relative = _normalize(end.path)
        patterns = (*rules.deny, *rules.allow)
        locations: tuple[str, ...] | None = ()
        if end.store is not None and (self.physical or any(is_physical(p) for p in patterns)):
            locations = _locations(end.store, end.path)
        if locations is None:  # fail closed: a rule on the location cannot be checked
            raise TransferDenied(
                f"{operation}.deny" if rules.deny else f"{operation}.allow",
                f"path {end.path!r} has no physical location to match the rules against",
                transfer=transfer,
            )

        def names(pattern: str) -> tuple[str, ...]:
            """What *pattern* is matched against: every spelling for deny, the real location (last) for allow."""
            if is_physical(pattern) and locations:
                return locations
            if self.physical and locations:
                return tuple(name.partition(":")[2] for name in locations)
            return (relative,)

        for pattern in rules.deny:
            for name in names(pattern):
                if self._match(name, pattern):
                    raise TransferDenied(
                        f"{operation}.deny", f"path {name!r} matches denied pattern {pattern!r}", transfer=transfer
                    )
        if rules.allow and not any(self._match(names(p)[-1], p) for p in rules.allow):
            shown = (locations[-1] if locations else relative) if self.physical else relative
            raise TransferDenied(
                f"{operation}.allow",
                f"path {shown!r} matches none of the allowed patterns {list(rules.allow)!r}",
                transfer=transfer,
            )

    def _check_size(self, context: TransferContext, limit: int, transfer: str) -> None:
        size = context.size
        source = context.source
        if (
            size is None
            and self.check_remote_size
            and source.store is not None
            and source.store.supports(Capability.METADATA)  # else (stdin...) the bytes are counted as they move
        ):
            size = context.size = source.store.get_file_info(source.path).size  # the core also checks it
        if size is not None and size > limit:
            raise TransferDenied("max_size", f"size {size} bytes exceeds the limit of {limit} bytes", transfer=transfer)
