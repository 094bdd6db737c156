"""The core streaming loop of ``upload``, ``download`` and ``transfer``, with hook dispatch.

Each function takes the :class:`~remote_store_transfer.plugin.manager.Dispatch`
of a plugin manager first; :mod:`remote_store_transfer.transfers` supplies it.
Only the public Store API is used (``read``, ``write``, ``write_atomic``).

Per call: local checks, then ``pre_transfer``, then the data moves (with
``on_chunk`` per chunk when anything observes chunks), then ``post_transfer``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import logging
import os
import stat
import uuid
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from remote_store_transfer.capturing import active as capture_active
from remote_store_transfer.capturing import record as capture_record
from remote_store_transfer.context import Endpoint, TransferContext, describe_call
from remote_store_transfer.errors import IncompleteTransferError
from remote_store_transfer.locations import refuse_same_file
from remote_store_transfer.plugin.calling import call_each

if TYPE_CHECKING:
    from collections.abc import Mapping

    from remote_store import Store, WriteResult

    from remote_store_transfer.batch import Batch
    from remote_store_transfer.plugin.manager import Dispatch

__all__ = ["CHUNK_SIZE", "ChunkReader", "ProgressReader", "download", "transfer", "upload"]

log = logging.getLogger("remote_store_transfer")

CHUNK_SIZE = 1_048_576
"""Size of each read of the remote stream in ``download`` (XFER-007): 1 MiB."""

OnChunk = Callable[[TransferContext, int, "memoryview | bytes"], object]
"""``on_chunk(context, nbytes, data)`` with positional arguments, as ``Dispatch.chunk`` is."""


class ChunkReader:
    """A readable stream that calls ``on_chunk`` for every non-empty read of *inner*.

    Handed to ``store.write()`` in place of the source stream when chunks are
    observed. Other attributes (``seek``, ``tell``, ``name``...) are delegated
    to *inner*. *on_chunk* is called as ``on_chunk(context, nbytes, data)``.
    """

    __slots__ = ("_context", "_inner", "_keep", "_on_chunk")

    def __init__(self, inner: IO[bytes], context: TransferContext, on_chunk: OnChunk, *, keep: bool = True) -> None:
        self._inner = inner
        self._context = context
        self._on_chunk = on_chunk
        self._keep = keep  # a plugin may keep the data until the next on_chunk: readinto hands it a copy

    def read(self, size: int | None = -1) -> bytes:
        data = self._inner.read(-1 if size is None else size)
        if data:
            self._seen(data)
        elif size != 0:
            self._ended()
        return data

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._inner, "read1", self._inner.read)
        data: bytes = read1(size)
        if data:
            self._seen(data)
        elif size != 0:
            self._ended()
        return data

    def readinto(self, buffer: Any) -> int:
        n: int | None = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            with memoryview(buffer) as view:  # the caller may refill its buffer before the next on_chunk
                chunk = view.cast("B")[:n].toreadonly()
                self._seen(chunk.tobytes() if self._keep else chunk)
        elif n == 0 and len(buffer):
            self._ended()
        return n or 0

    def readline(self, size: int | None = -1) -> bytes:
        data = self._inner.readline(size if size is not None else -1)
        if data:
            self._seen(data)
        elif size != 0:
            self._ended()
        return data

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _seen(self, data: bytes | memoryview) -> None:
        context = self._context
        nbytes = len(data)  # bytes, bytearray or a byte-format ("B") memoryview
        context.bytes_transferred += nbytes
        self._on_chunk(context, nbytes, data)

    def _ended(self) -> None:
        """*inner* reported its end (an empty read of a non-zero size): fail if it is short of ``context.size``."""
        _check_complete(self._context, self._context.bytes_transferred)


class ProgressReader(ChunkReader):
    """A :class:`ChunkReader` for a call that nothing but the caller's ``on_progress`` observes: no context.

    Calls ``on_progress(nbytes)`` for every non-empty read, as the ``progress``
    plugin would, and counts the bytes in :attr:`received` (for an error's note).
    """

    __slots__ = ("_on_progress", "received")

    def __init__(self, inner: IO[bytes], on_progress: Callable[[int], None]) -> None:
        self._inner = inner
        self._keep = False  # on_progress takes the size only
        self._on_progress = on_progress
        self.received = 0

    def _seen(self, data: bytes | memoryview) -> None:
        nbytes = len(data)
        self.received += nbytes
        self._on_progress(nbytes)

    def _ended(self) -> None:
        """No size is known on this path: nothing to check."""


def _check_complete(context: TransferContext, received: int | None, *, written: bool = False) -> None:
    """Raise :class:`IncompleteTransferError` when the source ended before ``context.size`` bytes.

    Called where the source reports its end (an empty read), so that a short
    stream fails the write before the destination commits it; and once more
    after the write, for stores that stop reading without asking for the end.
    """
    expected = context.size
    if expected is not None and received is not None and received < expected:
        raise IncompleteTransferError(context.describe(), expected, received, written=written)


def _finish(dispatch: Dispatch, context: TransferContext, error: BaseException | None) -> BaseException | None:
    """Run every ``post_transfer`` implementation (``plugin.calling.call_each``); return the call's final error."""
    return call_each(
        "post_transfer",
        dispatch.post,
        {"context": context, "error": error},
        error,
        lambda: f"{context.describe()}, {context.bytes_transferred} bytes moved",
    )


def _writer(store: Store, atomic: bool, metadata: Mapping[str, str] | None) -> Callable[..., WriteResult]:
    """``store.write`` or ``store.write_atomic``, with *metadata* bound when there is any."""
    write = store.write_atomic if atomic else store.write
    return functools.partial(write, metadata=metadata) if metadata else write


def _begin(dispatch: Dispatch, context: TransferContext) -> None:
    """Hand *context* to the caller's ``capture()`` blocks, then run ``pre_transfer`` (errors per the hook spec)."""
    capture_record(context)
    if dispatch.pre is not None:
        try:
            dispatch.pre(context=context)
        except BaseException as exc:
            exc.add_note(f"in pre_transfer of {context.describe()}: nothing was read or written")
            _finish(dispatch, context, exc)
            raise


def _failed(dispatch: Dispatch, context: TransferContext, exc: BaseException) -> None:
    """The data did not all move: say where it stopped, then ``post_transfer`` with *exc* (the caller re-raises)."""
    exc.add_note(f"during {context.describe()} after {context.bytes_transferred} bytes")
    _finish(dispatch, context, exc)


def _end(dispatch: Dispatch, context: TransferContext) -> None:
    """The data moved: ``post_transfer``, raising the first error it raised (with a note naming its plugin)."""
    error = _finish(dispatch, context, None)
    if error is not None:
        raise error


def upload(
    dispatch: Dispatch,
    store: Store,
    local_path: str | os.PathLike[str],
    remote_path: str,
    overwrite: bool,
    on_progress: Callable[[int], None] | None,
    atomic: bool,
    *,
    metadata: Mapping[str, str] | None = None,
    batch: Batch | None = None,
    replaces: bool | None = None,
) -> None:
    """Stream a local file into *store* (see :func:`remote_store_transfer.upload`).

    *metadata* (user metadata for the destination, used by the tree calls to
    keep modification times), *batch* (``context.batch``) and *replaces*
    (``context.replaces``: the planner's word on whether the file exists) are for the tree calls.
    """
    path = os.fsdecode(local_path)  # bytes paths too (undecodable bytes as surrogates): str from here on
    with open(path, "rb") as fh:  # FileNotFoundError before any Store call (XFER-004)
        refuse_same_file(None, path, store, remote_path, "upload")
        context = TransferContext(
            "upload",
            Endpoint(None, path),
            Endpoint(store, remote_path),
            overwrite=overwrite,
            on_progress=on_progress,
            size=os.fstat(fh.fileno()).st_size,
            atomic=atomic,
            batch=batch,
            replaces=replaces,
        )
        write = _writer(store, atomic, metadata)
        _begin(dispatch, context)
        try:
            # Nothing observes chunks: the open file goes straight to the store (XFER-002). Not with atomic: the
            # early-end check must run inside write_atomic, before the commit, so a file cut short never
            # replaces the good copy.
            if on_progress is None and not dispatch.chunk_observers and not atomic:
                try:
                    context.write_result = result = write(remote_path, fh, overwrite=overwrite)
                finally:
                    context.bytes_transferred = fh.tell()
                _check_complete(context, result.size, written=True)  # the file shrank while it was read
            else:
                source = cast("BinaryIO", ChunkReader(fh, context, dispatch.chunk, keep=dispatch.chunk_observers))
                context.write_result = write(remote_path, source, overwrite=overwrite)
                _check_complete(context, context.bytes_transferred, written=True)
        except BaseException as exc:
            _failed(dispatch, context, exc)
            raise
        if dispatch.post:
            _end(dispatch, context)


def download(
    dispatch: Dispatch,
    store: Store,
    remote_path: str,
    local_path: str | os.PathLike[str],
    overwrite: bool,
    on_progress: Callable[[int], None] | None,
    atomic: bool,
    *,
    size: int | None = None,
    batch: Batch | None = None,
    replaces: bool | None = None,
) -> None:
    """Stream a store file to a local path (see :func:`remote_store_transfer.download`).

    *size* (``context.size``: the source's size from the tree's listing), *batch* and *replaces* are for the
    tree calls.
    """
    dest = os.fsdecode(local_path)  # bytes paths too: str from here on
    refuse_same_file(store, remote_path, None, dest, "download")
    if not overwrite and os.path.exists(dest):  # before store.read() (XFER-008)
        raise FileExistsError(f"Local file already exists: {dest}")
    context = TransferContext(
        "download",
        Endpoint(store, remote_path),
        Endpoint(None, dest),
        overwrite=overwrite,
        on_progress=on_progress,
        size=size,
        atomic=atomic,
        batch=batch,
        replaces=replaces,
    )
    on_chunk = dispatch.chunk if on_progress is not None or dispatch.chunk_observers else None
    buffers = 2 if dispatch.chunk_observers else 1  # plugins see the data: keep each chunk until the next on_chunk

    _begin(dispatch, context)
    try:
        stream = store.read(remote_path)
        try:  # the remote stream is closed whatever happens (XFER-010)
            if atomic:
                _write_local_atomic(stream, dest, overwrite, context, on_chunk, buffers)
            else:
                # Without overwrite, created exclusively: a file (or a dangling symlink) that appeared since the
                # check above is never overwritten nor followed.
                with open(dest, "wb" if overwrite else "xb") as fh:
                    _copy(stream, fh, context, on_chunk, buffers)
        except FileNotFoundError as exc:
            folder = os.path.dirname(os.path.abspath(dest))
            if exc.filename is not None and not os.path.isdir(folder):  # not the store's error: the local side's
                exc.add_note(f"the destination's folder {folder} does not exist (the source was found)")
            raise
        finally:
            stream.close()
    except BaseException as exc:
        _failed(dispatch, context, exc)
        raise
    if dispatch.post:
        _end(dispatch, context)


def _copy(
    stream: IO[bytes], fh: IO[bytes], context: TransferContext, on_chunk: OnChunk | None, buffers: int = 1
) -> None:
    """The download loop: 1 MiB reads of *stream*; ``on_chunk`` for each (as upstream's callback), then write it.

    With ``readinto``, the chunks take turns in *buffers* reused buffers: with two, a chunk stays unchanged
    until the next ``on_chunk`` returns (a plugin's hashing thread may still be reading it meanwhile).
    """
    write = fh.write
    if isinstance(stream, io.BufferedIOBase | io.RawIOBase):
        views = [memoryview(bytearray(CHUNK_SIZE)) for _ in range(buffers)]
        for view, chunks in itertools.cycle([(view, view.toreadonly()) for view in views]):
            n = stream.readinto(view)
            if not n:
                break
            context.bytes_transferred += n
            if on_chunk is not None:
                on_chunk(context, n, chunks[:n])
            write(view[:n])
    else:
        while data := stream.read(CHUNK_SIZE):
            context.bytes_transferred += len(data)
            if on_chunk is not None:
                on_chunk(context, len(data), data)
            write(data)
    _check_complete(context, context.bytes_transferred)  # before an atomic download moves the file into place


def _write_local_atomic(
    stream: IO[bytes], dest: str, overwrite: bool, context: TransferContext, on_chunk: OnChunk | None, buffers: int
) -> None:
    """Download into a temp file beside *dest*, then move it into place; never leave a partial file."""
    directory, name = os.path.split(os.path.abspath(dest))
    # At most 50 characters of the name (<= 200 bytes): the temp name must fit wherever *dest*'s does (NAME_MAX 255).
    # A tree's temp files carry its tag, so that the tree can remove those of a worker process that died.
    tag = f"{context.batch.temp_tag}." if context.batch is not None else ""
    temp = os.path.join(directory, f".{name[:50]}.{tag}{uuid.uuid4().hex[:12]}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with open(fd, "wb") as fh:
            _copy(stream, fh, context, on_chunk, buffers)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            with contextlib.suppress(OSError):  # the file it replaces keeps its permissions (a 0600 stays 0600)
                os.chmod(temp, stat.S_IMODE(os.stat(dest).st_mode))
            os.replace(temp, dest)
        else:
            _place_without_clobbering(temp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _place_without_clobbering(temp: str, dest: str) -> None:
    """Move *temp* to *dest*, raising ``FileExistsError`` if *dest* appeared meanwhile."""
    try:
        os.link(temp, dest)  # atomic "create if absent"
    except FileExistsError:
        raise FileExistsError(f"Local file already exists: {dest}") from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(dest):
            raise FileExistsError(f"Local file already exists: {dest}") from None
        os.replace(temp, dest)
        return
    os.unlink(temp)


def transfer(
    dispatch: Dispatch,
    src_store: Store,
    src_path: str,
    dst_store: Store,
    dst_path: str,
    overwrite: bool,
    on_progress: Callable[[int], None] | None,
    atomic: bool,
    *,
    size: int | None = None,
    metadata: Mapping[str, str] | None = None,
    batch: Batch | None = None,
    replaces: bool | None = None,
) -> None:
    """Stream a file from one store to another (see :func:`remote_store_transfer.transfer`).

    *size*, *metadata*, *batch* and *replaces* are for the tree calls (see :func:`upload` and :func:`download`).
    """
    refuse_same_file(src_store, src_path, dst_store, dst_path, "transfer")
    if dispatch.unobserved and size is None and metadata is None and not capture_active():
        # No hook and no capture() sees this call: no context to build (per-call cost); on_progress called directly.
        reader = None
        try:
            stream = src_store.read(src_path)
            try:  # the source stream is closed whatever happens (XFER-015)
                write = _writer(dst_store, atomic, None)
                if on_progress is None:
                    write(dst_path, stream, overwrite=overwrite)  # unwrapped (XFER-012)
                else:
                    reader = ProgressReader(stream, on_progress)
                    write(dst_path, cast("BinaryIO", reader), overwrite=overwrite)
            finally:
                stream.close()
        except BaseException as exc:
            call = describe_call("transfer", Endpoint(src_store, src_path), Endpoint(dst_store, dst_path))
            exc.add_note(f"during {call} after {0 if reader is None else reader.received} bytes")
            raise
        return
    write = _writer(dst_store, atomic, metadata)
    context = TransferContext(
        "transfer",
        Endpoint(src_store, src_path),
        Endpoint(dst_store, dst_path),
        overwrite=overwrite,
        on_progress=on_progress,
        size=size,
        atomic=atomic,
        batch=batch,
        replaces=replaces,
    )

    _begin(dispatch, context)
    try:
        stream = src_store.read(src_path)
        try:  # the source stream is closed whatever happens (XFER-015)
            # Unwrapped when nothing observes chunks (XFER-012); with atomic and a known size, wrapped so that
            # the early-end check runs before the commit.
            if on_progress is None and not dispatch.chunk_observers and not (atomic and context.size is not None):
                context.write_result = result = write(dst_path, stream, overwrite=overwrite)
                context.bytes_transferred = result.size if result.size is not None else 0
                _check_complete(context, result.size, written=True)
            else:
                source = cast("BinaryIO", ChunkReader(stream, context, dispatch.chunk, keep=dispatch.chunk_observers))
                context.write_result = write(dst_path, source, overwrite=overwrite)
                _check_complete(context, context.bytes_transferred, written=True)
        finally:
            stream.close()
    except BaseException as exc:
        _failed(dispatch, context, exc)
        raise
    if dispatch.post:
        _end(dispatch, context)
