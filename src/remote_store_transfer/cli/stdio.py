"""``-`` on the command line: stdin as the source of an ``upload``, stdout as the destination of a ``download``.

The library's ``upload`` and ``download`` take local paths (XFER-001,
XFER-006), so the CLI streams the standard streams through ``transfer``
instead: :func:`stdio_store` is a store on :class:`StdioBackend`, whose file
``stdin`` reads the process's stdin and whose file ``stdout`` is written to
its stdout. Every plugin sees the call, as a ``transfer`` from or to that
store (``Store(backend='stdio', ...):stdin``); the size of stdin is not known
beforehand (``context.size`` is ``None``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, cast

from remote_store import (
    Backend,
    Capability,
    CapabilityNotSupported,
    CapabilitySet,
    NotFound,
    RemotePath,
    Store,
    WriteResult,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from contextlib import AbstractContextManager

    from remote_store import FileInfo, FolderInfo

__all__ = ["STDIN", "STDOUT", "StdioBackend", "stdio_store"]

STDIN = "stdin"
"""The path of the standard input in a :func:`stdio_store`."""
STDOUT = "stdout"
"""The path of the standard output in a :func:`stdio_store`."""

_CHUNK = 1_048_576


class _Borrowed:
    """A stream that the transfer may close without closing the process's standard stream under it."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.closed = False

    def read(self, size: int | None = -1) -> bytes:
        return self._inner.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        return self._inner.readinto(buffer)  # type: ignore[attr-defined,no-any-return]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StdioBackend(Backend):
    """A backend of two files: ``stdin`` (read only) and ``stdout`` (write only, never atomic).

    Args:
        stdin: The binary stream ``stdin`` reads (``sys.stdin.buffer``).
        stdout: The binary stream ``stdout`` writes (``sys.stdout.buffer``); flushed after each chunk.
    """

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self._stdin = stdin
        self._stdout = stdout

    @property
    def name(self) -> str:
        return "stdio"

    @property
    def capabilities(self) -> CapabilitySet:
        return CapabilitySet({Capability.READ, Capability.WRITE})

    def _refuse(self, what: str, path: str = "") -> NoReturn:
        raise CapabilityNotSupported(f"the standard streams cannot {what}", path=path or None, backend=self.name)

    def _only(self, path: str, wanted: str) -> None:
        if str(path).strip("/") != wanted:
            raise NotFound(f"Not found: {path} (the standard streams hold only {STDIN} and {STDOUT})", path=str(path))

    def exists(self, path: str) -> bool:
        return False  # nothing to overwrite: stdout is always written

    def is_file(self, path: str) -> bool:
        return False

    def is_folder(self, path: str) -> bool:
        return False

    def read(self, path: str) -> BinaryIO:
        if str(path).strip("/") == STDOUT:  # a verifier reading the destination back
            self._refuse("read back what was written to stdout", path)
        self._only(path, STDIN)
        return cast("BinaryIO", _Borrowed(self._stdin))

    def read_bytes(self, path: str) -> bytes:
        self._refuse("be read whole", path)

    def write(
        self,
        path: str,
        content: BinaryIO | bytes,
        *,
        overwrite: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> WriteResult:
        self._only(path, STDOUT)
        out = self._stdout
        size = 0
        if isinstance(content, bytes | bytearray | memoryview):
            size = out.write(content) or 0
        else:
            while data := content.read(_CHUNK):
                out.write(data)
                out.flush()  # a reader down the pipe gets each chunk as it comes
                size += len(data)
        out.flush()
        return WriteResult(path=RemotePath(STDOUT), size=size)

    def write_atomic(self, path: str, content: BinaryIO | bytes, **options: Any) -> WriteResult:
        self._refuse("be written atomically", path)

    def open_atomic(self, path: str, *, overwrite: bool = False) -> AbstractContextManager[BinaryIO]:
        self._refuse("be written atomically", path)

    def delete(self, path: str, *, missing_ok: bool = False) -> None:
        self._refuse("delete", path)

    def delete_folder(self, path: str, *, recursive: bool = False, missing_ok: bool = False) -> None:
        self._refuse("delete", path)

    def list_files(self, path: str, *, recursive: bool = False, max_depth: int | None = None) -> Iterator[FileInfo]:
        self._refuse("be listed", path)

    def list_folders(self, path: str) -> Iterator[Any]:
        self._refuse("be listed", path)

    def get_file_info(self, path: str) -> FileInfo:
        self._refuse("tell a size", path)

    def get_folder_info(self, path: str) -> FolderInfo:
        self._refuse("tell a size", path)

    def move(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._refuse("move", src)

    def copy(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._refuse("copy", src)


def stdio_store(stdin: BinaryIO, stdout: BinaryIO) -> Store:
    """A store whose file :data:`STDIN` reads *stdin* and whose file :data:`STDOUT` writes *stdout*."""
    return Store(StdioBackend(stdin, stdout))
