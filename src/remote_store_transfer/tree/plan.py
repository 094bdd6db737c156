"""The planner: compare each source file with the destination index and decide what to do.

Deciding is kept apart from doing (as rclone's ``fs/march`` and ``fs/sync``
are): :func:`decide` looks at two listings' entries and returns a
:class:`Decision`; the runner carries it out. A decision of ``"check"`` needs
one more look that the listings cannot give (the destination's kept
modification time, or content digests), made by :func:`check` in a worker.

The rules of ``update``:

============  ==============================================================
``missing``   copy files absent at the destination; skip the rest (resume).
``changed``   also copy a file whose size differs, or whose modification time
              differs from the destination's kept time by more than
              ``modify_window`` (the destination's own write time, when it
              keeps none: copy when the source is newer). With ``checksum``,
              same-size files are compared by content digest instead.
``all``       copy everything.
============  ==============================================================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from remote_store import Capability

if TYPE_CHECKING:
    from remote_store import ContentDigest, Store

    from remote_store_transfer.tree.walk import Entry

__all__ = [
    "MAX_DELETE",
    "UPDATES",
    "Decision",
    "Side",
    "Update",
    "check",
    "decide",
    "delete_limit",
    "keeps_mtime",
    "refresh",
]

Update = Literal["missing", "changed", "all"]
"""The ``update`` option of the tree calls."""

UPDATES: tuple[str, ...] = ("missing", "changed", "all")

_HASH_CHUNK = 1_048_576

MAX_DELETE = "50%"
"""The default ``max_delete``: a listing cut short without an error usually reads as most files gone."""


def delete_limit(max_delete: int | str | None, destination_files: int) -> int | None:
    """How many of *destination_files* a run may delete under *max_delete* (``None``: no limit).

    *max_delete* is a count (``10``), a percentage of *destination_files*
    (``"50%"``, rounded down), or ``None``.

    Raises:
        TypeError / ValueError: *max_delete* is none of those (the message names the option).
    """
    if max_delete is None:
        return None
    if isinstance(max_delete, int) and not isinstance(max_delete, bool):
        if max_delete < 0:
            raise ValueError(f"max_delete must be 0 or more files, got {max_delete}")
        return max_delete
    if not isinstance(max_delete, str):
        raise TypeError(f"max_delete must be an int, a percentage such as '50%' or None, got {max_delete!r}")
    number = max_delete.strip().removesuffix("%")
    try:
        percent = float(number) if max_delete.strip().endswith("%") else None
    except ValueError:
        percent = None
    if percent is None or not 0 <= percent <= 100:
        raise ValueError(f"max_delete must be a count or a percentage from '0%' to '100%', got {max_delete!r}")
    return int(destination_files * percent // 100)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one source file.

    Attributes:
        action: ``"copy"``, ``"skip"`` or ``"check"`` (look closer, then copy or skip).
        reason: Why, in a word or two (``"new"``, ``"exists"``, ``"size differs"``...).
        overwrite: The destination exists (or may): write with ``overwrite=True``.
            A file the destination index does not hold is written with
            ``overwrite=True`` too on a store (no per-file existence check:
            see the race in docs/trees.md), but exclusively on a local disk.
    """

    action: Literal["copy", "skip", "check"]
    reason: str
    overwrite: bool


NEW = Decision("copy", "new", overwrite=False)


def decide(  # noqa: PLR0911, PLR0912 -- one return per rule of the table above
    src: Entry,
    dst: Entry | None,
    update: Update,
    *,
    checksum: bool,
    modify_window: float,
    src_keeps_mtime: bool = False,
    dst_keeps_mtime: bool = False,
) -> Decision:
    """The decision for source entry *src* against destination entry *dst* (``None``: absent).

    Args:
        src_keeps_mtime: The source store keeps user metadata, so a source
            entry whose listing carried none (S3's) may still keep the file's
            own time, which only a per-file look (:func:`check`) can read.
        dst_keeps_mtime: Likewise for the destination.
    """
    if dst is None:
        return NEW
    if dst.skip is not None:  # a symlink or a special file at the destination: never written through
        return Decision("skip", f"destination is a {dst.skip}", overwrite=False)
    if update == "missing":
        return Decision("skip", "exists", overwrite=True)
    if update == "all":
        return Decision("copy", "replace", overwrite=True)
    if src.size != dst.size:
        return Decision("copy", "size differs", overwrite=True)
    if checksum:
        if src.digest is not None and dst.digest is not None and src.digest.algorithm == dst.digest.algorithm:
            same = src.digest.value == dst.digest.value
            return Decision("skip", "same digest", True) if same else Decision("copy", "digest differs", True)
        return Decision("check", "checksum", overwrite=True)
    if src_keeps_mtime and not src.exact_mtime:  # the listing gave the write time; the kept one decides
        return Decision("check", "kept mtime", overwrite=True)
    if src.mtime_ns is None or dst.mtime_ns is None:
        return Decision("skip", "same size", overwrite=True)  # nothing else to compare
    window_ns = round(modify_window * 1_000_000_000)  # times are integer nanoseconds: compared exactly
    if dst.exact_mtime:
        if abs(src.mtime_ns - dst.mtime_ns) > window_ns:
            return Decision("copy", "modified", overwrite=True)
        return Decision("skip", "unchanged", overwrite=True)
    if src.mtime_ns > dst.mtime_ns + window_ns:  # the destination's time is when it was written
        return Decision("copy", "newer", overwrite=True)
    if dst_keeps_mtime:
        return Decision("check", "kept mtime", overwrite=True)
    return Decision("skip", "unchanged", overwrite=True)


def keeps_mtime(store: Store | None) -> bool:
    """*store* keeps user metadata, where a file's own modification time is kept (a local folder does not need it)."""
    return store is not None and store.supports(Capability.USER_METADATA)


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a tree, for :func:`check`: a local root (``store is None``) or a store prefix."""

    store: Store | None
    root: str

    @property
    def keeps_mtime(self) -> bool:
        """The store keeps user metadata (where a file's own modification time is kept)."""
        return keeps_mtime(self.store)

    def reported_digest(self, path: str) -> ContentDigest | None:
        """The digest the store reports for *path* (``get_file_info``), if it reports one."""
        if self.store is None or not self.store.supports(Capability.METADATA):
            return None
        return self.store.get_file_info(path).digest

    def hexdigest(self, path: str, algorithm: str = "sha256") -> str:
        """The *algorithm* digest of the file at *path* (a full local path or store path), read in full."""
        if self.store is None:
            with open(path, "rb") as fh:
                return hashlib.file_digest(fh, algorithm).hexdigest()
        from remote_store.ext.integrity import checksum  # noqa: PLC0415 -- only checksum comparisons read it

        return checksum(self.store, path, algorithm)[1]


def refresh(entry: Entry, side: Side, path: str) -> Entry:
    """*entry* with the time its store keeps for it (one metadata call), when its listing did not carry it."""
    if entry.exact_mtime or not side.keeps_mtime:
        return entry
    from remote_store_transfer.tree.walk import store_entry  # noqa: PLC0415 -- walk is a sibling

    assert side.store is not None
    return store_entry(side.store.get_file_info(path), entry.path)


def check(
    decision: Decision,
    src: Entry,
    dst: Entry,
    src_side: Side,
    src_path: str,
    dst_side: Side,
    dst_path: str,
    modify_window: float,
) -> tuple[Decision, Entry]:
    """Turn a ``"check"`` decision into ``"copy"`` or ``"skip"`` by looking at the files themselves.

    ``"kept mtime"``: read the kept modification times the listings did not
    carry (one metadata call per side that needs it), then decide again.
    ``"checksum"``: compare digests, the stores' own when the public API
    gives them with the same algorithm, else sha256 of both sides (each file
    read in full).

    Returns:
        The decision, and the source entry (with its kept time, when it was read).
    """
    if decision.reason == "kept mtime":
        src = refresh(src, src_side, src_path)
        final = decide(src, refresh(dst, dst_side, dst_path), "changed", checksum=False, modify_window=modify_window)
        return final, src
    src_digest = src.digest or src_side.reported_digest(src_path)
    dst_digest = dst_side.reported_digest(dst_path)
    if src_digest is not None and dst_digest is not None and src_digest.algorithm == dst_digest.algorithm:
        same = src_digest.value == dst_digest.value
    else:
        same = src_side.hexdigest(src_path) == dst_side.hexdigest(dst_path)
    return (Decision("skip", "same content", True) if same else Decision("copy", "content differs", True)), src
