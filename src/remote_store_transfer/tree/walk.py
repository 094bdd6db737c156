"""The tree walk: list a local folder or a store prefix as relative paths, lazily, through the filters.

Both walks yield :class:`Entry` objects one at a time as the listing comes
(files start moving before a long listing ends) and never hold the listing
in memory. A local walk is sorted by name within each folder; a store walk
comes in the store's order.

Local rules: symbolic links are skipped unless *follow_symlinks* (then a
link that leads back into a folder already on the way is skipped, so a loop
never hangs); FIFOs, sockets and devices are skipped with a reason; a folder
that cannot be read becomes a failed entry.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from remote_store import NotFound

from remote_store_transfer.locations import local_file

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from remote_store import ContentDigest, FileInfo, Store

__all__ = [
    "MTIME_KEY",
    "Entry",
    "index_local",
    "index_store",
    "join",
    "mtime_metadata",
    "parse_mtime",
    "walk_local",
    "walk_store",
]

MTIME_KEY = "mtime"
"""User-metadata key under which a file's source modification time is kept (seconds, as rclone keeps it)."""

_EPOCH_MIN = datetime.min.replace(tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?")


@dataclass(slots=True)
class Entry:
    """One file found by a walk (or a reason it is not taken).

    Attributes:
        path: The relative path, "/"-separated.
        size: Size in bytes.
        mtime_ns: Modification time in integer nanoseconds since the epoch
            (a float of seconds cannot hold them), ``None`` when unknown.
        exact_mtime: ``True`` when *mtime_ns* is the file's own time (a local
            file, or one kept in user metadata), ``False`` when it is the time
            a store wrote the object.
        digest: A content digest the store reported, if any.
        skip: Why the walk does not take this file (a symlink, a FIFO...), else ``None``.
        error: The error that kept the walk from reading it, else ``None``.
    """

    path: str
    size: int = 0
    mtime_ns: int | None = None
    exact_mtime: bool = False
    digest: ContentDigest | None = None
    skip: str | None = None
    error: BaseException | None = None


def join(prefix: str, rel: str) -> str:
    """``prefix/rel`` for store paths (*prefix* may be empty or end in ``/``)."""
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


def mtime_metadata(mtime_ns: int) -> dict[str, str]:
    """The user metadata that keeps *mtime_ns* on a store object: ``{"mtime": "1700000000.123456789"}``."""
    sign = "-" if mtime_ns < 0 else ""  # "-1.5" is 1.5 s before the epoch: the digits are of the magnitude
    seconds, nanos = divmod(abs(mtime_ns), 1_000_000_000)
    return {MTIME_KEY: f"{sign}{seconds}.{nanos:09d}"}


def parse_mtime(raw: str) -> int | None:
    """Nanoseconds since the epoch from a kept ``mtime`` (``"1700000000.123456789"``), exactly; ``None`` if not a time.

    Decimal seconds are read digit by digit (a float would put nine decimals
    up to a few hundred nanoseconds off); a spelling only float reads
    (``"1.7e9"``) is taken as float.
    """
    match = _DECIMAL.fullmatch(raw.strip())
    if match is not None and (match["whole"] or match["fraction"]):
        fraction = match["fraction"] or ""
        nanos = int(match["whole"] or 0) * 1_000_000_000 + int(fraction[:9].ljust(9, "0"))
        nanos += fraction[9:10] >= "5"  # beyond nanoseconds: rounded half up
        return -nanos if match["sign"] == "-" else nanos
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return round(seconds * 1_000_000_000) if math.isfinite(seconds) else None


def _kept_mtime(info: FileInfo) -> int | None:
    """The modification time (nanoseconds) kept in *info*'s user metadata, if any."""
    raw = (info.metadata or {}).get(MTIME_KEY)
    return None if raw is None else parse_mtime(raw)


def store_entry(info: FileInfo, rel: str, local: Callable[[str], str] | None = None) -> Entry:
    """An :class:`Entry` for a store file: its kept mtime when it has one, else the store's time.

    *local* (from :func:`local_file`): the time is the file's, to the
    nanosecond (the store reports a datetime, to the microsecond); still the
    time the store wrote it, as far as the planner's rules go (a tree sets it
    to the source's, other writers do not).
    """
    kept = _kept_mtime(info)
    if kept is not None:
        return Entry(rel, info.size, kept, True, info.digest)
    if local is not None:
        with contextlib.suppress(OSError):  # gone meanwhile: the store's own report below
            return Entry(rel, info.size, os.stat(local(str(info.path))).st_mtime_ns, False, info.digest)
    stamp = info.modified_at
    mtime_ns = None if stamp is None or stamp <= _EPOCH_MIN else (stamp - _EPOCH) // timedelta(microseconds=1) * 1000
    return Entry(rel, info.size, mtime_ns, False, info.digest)


_SPECIAL = (
    (stat.S_ISFIFO, "special file (FIFO)"),
    (stat.S_ISSOCK, "special file (socket)"),
    (stat.S_ISCHR, "special file (character device)"),
    (stat.S_ISBLK, "special file (block device)"),
)


def _special(mode: int) -> str | None:
    for test, reason in _SPECIAL:
        if test(mode):
            return reason
    return None


def walk_local(  # noqa: PLR0912 -- one branch per kind of entry
    root: str, taken: Callable[[str], bool], *, follow_symlinks: bool = False
) -> Iterator[Entry]:
    """Every file under the local folder *root* whose relative path *taken* accepts.

    Raises:
        FileNotFoundError: *root* does not exist.
        NotADirectoryError: *root* is not a folder.
    """
    top = os.stat(root)  # FileNotFoundError
    if not stat.S_ISDIR(top.st_mode):
        raise NotADirectoryError(f"not a folder: {root}")
    # (folder, its relative path, the (dev, inode) of the folders on the way down to it)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [(root, "", frozenset({(top.st_dev, top.st_ino)}))]
    while stack:
        folder, rel_folder, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Entry(rel_folder or ".", error=exc)
            continue
        subfolders = []
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            try:
                is_link = entry.is_symlink()
                st = entry.stat(follow_symlinks=follow_symlinks)
            except OSError as exc:  # a dangling link being followed, a file gone meanwhile
                if taken(rel):
                    yield Entry(rel, error=exc)
                continue
            if stat.S_ISDIR(st.st_mode):
                if is_link and not follow_symlinks:
                    if taken(rel):
                        yield Entry(rel, skip="symlink")
                    continue
                key = (st.st_dev, st.st_ino)
                if key in ancestors:  # a link back up the tree: a loop
                    if taken(rel):
                        yield Entry(rel, skip="symlink loop")
                    continue
                subfolders.append((entry.path, rel, ancestors | {key}))
                continue
            if not taken(rel):
                continue
            if is_link and not follow_symlinks:
                yield Entry(rel, skip="symlink")
                continue
            special = _special(st.st_mode)
            if special is not None:
                yield Entry(rel, skip=special)
                continue
            yield Entry(rel, st.st_size, st.st_mtime_ns, True)
        stack.extend(reversed(subfolders))  # depth first, in name order


def walk_store(store: Store, prefix: str, taken: Callable[[str], bool]) -> Iterator[Entry]:
    """Every file under *prefix* in *store* whose relative path *taken* accepts, as the listing comes.

    A prefix that does not exist (``NotFound`` before the first entry) holds no file.

    Raises:
        NotFound: The listing raised it after some entries (a page or folder that vanished):
            it is not complete, so it must not read as the whole source.
    """
    base = prefix.strip("/")
    cut = len(base) + 1 if base else 0
    local = local_file(store)
    listing = _Counted(store.list_files(base, recursive=True))
    try:
        for info in listing:
            rel = str(info.path)[cut:]
            if rel and not _is_marker(info) and taken(rel):
                yield store_entry(info, rel, local)
    except NotFound:
        if listing.count:  # a page or folder that vanished mid-listing: the listing is not complete
            raise
        return  # a prefix that does not exist holds no file


class _Counted:
    """An iterator that counts the items it gave (to tell a missing prefix from a listing cut short)."""

    __slots__ = ("count", "items")

    def __init__(self, items: Iterator[FileInfo]) -> None:
        self.items = items
        self.count = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> FileInfo:
        item = next(self.items)
        self.count += 1
        return item


def _is_marker(info: FileInfo) -> bool:
    """*info* is an S3 folder marker (a 0-byte ``pre/x/`` as the AWS console makes): a folder, not a file."""
    return info.size == 0 and not info.name  # the key ends in "/": its last segment is empty


def index_store(store: Store, prefix: str) -> dict[str, Entry]:
    """The destination index: every file under *prefix* in *store*, by relative path (one listing)."""
    return {entry.path: entry for entry in walk_store(store, prefix, _all)}


def index_local(root: str) -> dict[str, Entry]:
    """The destination index of a local folder (empty when it does not exist yet); symlinks count as files."""
    if not os.path.isdir(root):
        return {}
    index = {}
    for entry in walk_local(root, _all):
        if entry.error is None:
            index[entry.path] = entry
    return index


def _all(rel: str) -> bool:
    return True
