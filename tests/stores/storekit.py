"""Checks, faulty backends and a recording plugin shared by the store tests (imported by conftest and the tests).

``Recorder`` is a plugin that counts every hook call; the ``Faulty*`` backends
break reads or writes inside real backends. The servers live in ``harness``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remote_store import Capability, CapabilitySet, NotFound, Store
from remote_store.backends import LocalBackend, MemoryBackend, S3Backend, SFTPBackend

from remote_store_transfer import hookimpl

STORE_KINDS = ("memory", "local", "s3", "sftp")
MIB = 1_048_576

# region: checks shared by the test modules


def sha256_of_stream(stream: Any) -> tuple[str, int]:
    """(sha256, size) of everything *stream* yields; closes it."""
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := stream.read(MIB):
            digest.update(chunk)
            size += len(chunk)
    finally:
        stream.close()
    return digest.hexdigest(), size


def sha256_of_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return sha256_of_stream(fh)


def sha256_in_store(store: Store, path: str) -> tuple[str, int]:
    return sha256_of_stream(store.read(path))


class Recorder:
    """A plugin that records every hook call: counts, chunk bytes, the chunks' sha256, the error."""

    def __init__(self) -> None:
        self.pre = 0
        self.post = 0
        self.chunks = 0
        self.chunk_bytes = 0
        self.errors: list[BaseException | None] = []
        self.contexts: list[Any] = []
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @hookimpl
    def pre_transfer(self, context: Any) -> None:
        self.pre += 1
        self.contexts.append(context)

    @hookimpl
    def on_chunk(self, nbytes: int, data: Any) -> None:
        self.chunks += 1
        self.chunk_bytes += nbytes
        self._digest.update(data)

    @hookimpl
    def post_transfer(self, error: BaseException | None) -> None:
        self.post += 1
        self.errors.append(error)


# endregion


# region: faults that cannot be real: a source stream that breaks, a destination whose write breaks


class FaultyStream(io.RawIOBase):
    """Reads through *inner* (a real store's stream) and raises *error* once *fail_after* bytes were read.

    ``max_read`` caps each read (short reads, as a network stream gives).
    Closing it closes *inner*; :attr:`inner_closed` tells whether that happened.
    """

    def __init__(
        self,
        inner: Any,
        fail_after: int | None = None,
        error: Callable[[], BaseException] | None = None,
        max_read: Callable[[int], int] | None = None,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.fail_after = fail_after
        self.error = error or (lambda: ConnectionResetError(f"source stream broke after {fail_after} bytes"))
        self.max_read = max_read
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as whole:
            view = whole.cast("B")
            wanted = len(view)
            if wanted == 0:
                return 0
            if self.fail_after is not None:
                if self.position >= self.fail_after:
                    raise self.error()
                wanted = min(wanted, self.fail_after - self.position)
            if self.max_read is not None:
                wanted = max(1, min(wanted, self.max_read(wanted)))
            data = self.inner.read(wanted)
            n = len(data)
            view[:n] = data
            view.release()
        self.position += n
        return n

    @property
    def inner_closed(self) -> bool:
        return bool(self.inner.closed)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            super().close()


class PlainStream:
    """A stream that is no ``io`` class: only ``read`` and ``close`` (as some store clients return)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def read(self, size: int = -1) -> bytes:
        return bytes(self.inner.read(size))

    def close(self) -> None:
        self.inner.close()


class Faults:
    """Mixin for a real Backend class: records the streams ``read`` returns and can break reads or writes.

    Set :attr:`read_fails_after` to make every stream returned by ``read``
    raise after that many bytes; set :attr:`write_fails_after` to make
    ``write`` / ``write_atomic`` raise from inside the real backend's write,
    after it consumed that many bytes of the content (so the backend's own
    cleanup runs: temp file removal, multipart abort...).

    :attr:`read_sizes` / :attr:`write_read_sizes` (``wanted -> how many``)
    make the stream returned by ``read`` / the content ``write`` consumes
    answer every read with that many bytes at most (short reads);
    :attr:`plain_reads` makes ``read`` return a :class:`PlainStream`.
    """

    read_fails_after: int | None = None
    read_error: Callable[[], BaseException] | None = None
    read_sizes: Callable[[int], int] | None = None
    plain_reads = False
    write_fails_after: int | None = None
    write_error: Callable[[], BaseException] = staticmethod(
        lambda: BrokenPipeError("destination connection lost mid-write")
    )
    write_read_sizes: Callable[[int], int] | None = None
    list_fails_after: int | None = None
    """``list_files`` raises ``NotFound`` after yielding this many files (a page or folder that vanished)."""

    @property
    def opened(self) -> list[FaultyStream]:
        """Every stream ``read`` returned, in order."""
        return self.__dict__.setdefault("_faults_opened", [])

    def read(self, path: str) -> Any:
        stream = FaultyStream(super().read(path), self.read_fails_after, self.read_error, self.read_sizes)
        self.opened.append(stream)
        return PlainStream(stream) if self.plain_reads else stream

    def _incoming(self, content: Any) -> Any:
        if isinstance(content, bytes) or (self.write_fails_after is None and self.write_read_sizes is None):
            return content
        return FaultyStream(content, self.write_fails_after, self.write_error, self.write_read_sizes)

    def write(self, path: str, content: Any, **kwargs: Any) -> Any:
        return super().write(path, self._incoming(content), **kwargs)

    def list_files(self, path: str, **kwargs: Any) -> Any:
        for n, info in enumerate(super().list_files(path, **kwargs)):
            if self.list_fails_after is not None and n >= self.list_fails_after:
                raise NotFound(f"Folder not found: {path} (vanished mid-listing)", path=path, backend="faults")
            yield info

    def write_atomic(self, path: str, content: Any, **kwargs: Any) -> Any:
        return super().write_atomic(path, self._incoming(content), **kwargs)


class FaultyMemoryBackend(Faults, MemoryBackend):
    pass


class FaultyLocalBackend(Faults, LocalBackend):
    pass


class FaultyS3Backend(Faults, S3Backend):
    pass


class FaultySFTPBackend(Faults, SFTPBackend):
    pass


class NoAtomicMemoryBackend(MemoryBackend):
    """A memory store that can write but does not declare ``ATOMIC_WRITE`` (as some real stores do not)."""

    @property
    def capabilities(self) -> CapabilitySet:
        base = super().capabilities
        return CapabilitySet({c for c in Capability if base.supports(c) and c is not Capability.ATOMIC_WRITE})


# endregion

# region: what a failed call must leave behind


def open_files() -> set[str]:
    """This process's open regular files and pipes (``/proc/self/fd``), sockets and event fds left out.

    Connection pools of the S3 and SFTP clients come and go with sockets;
    a leaked local file, temp file or stream shows up here.
    """
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the fd of the listdir itself, closed by now
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            found.add(f"{fd}:{target}")
    return found


def message_of(exc: BaseException) -> str:
    """What a caller reads: the exception's text and its notes."""
    return "\n".join([f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", [])])


def stray_files(root: str | os.PathLike[str], expected: set[str]) -> list[str]:
    """Files under *root* other than the *expected* relative paths (temp files left behind)."""
    base = Path(root)
    return sorted(
        str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and str(p.relative_to(base)) not in expected
    )


# endregion
