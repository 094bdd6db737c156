"""Test doubles built on remote-store's public Backend API, for what a real store cannot show.

``RecordingBackend`` is a real ``MemoryBackend`` that also records which
methods were called and what ``write`` received, and returns streams that
record how they were read and whether they were closed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from remote_store import Capability, CapabilitySet
from remote_store.backends import MemoryBackend


class RecordingStream(io.BytesIO):
    """A BytesIO that records each read request size and whether it was closed."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        super().__init__(data)
        self.requests: list[int] = []
        self.closed_by_caller = False
        self.fail_after = fail_after

    def _check(self) -> None:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError(f"source stream failed after {self.tell()} bytes")

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(-1 if size is None else size)
        self._check()
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        self.requests.append(len(memoryview(buffer)))
        self._check()
        return super().readinto(buffer)

    def close(self) -> None:
        self.closed_by_caller = True
        super().close()


class RecordingBackend(MemoryBackend):
    """A memory backend that records calls, write contents and returned streams.

    Args:
        without: Capabilities to withdraw (e.g. ``{Capability.WRITE}``).
        fail_after: Streams returned by ``read`` raise after this many bytes.
        on_write: Called with the content object ``write`` receives, before writing.
    """

    def __init__(
        self,
        *,
        without: set[Capability] | None = None,
        fail_after: int | None = None,
        on_write: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.written: list[Any] = []
        self.streams: list[RecordingStream] = []
        self._without = without or set()
        self._fail_after = fail_after
        self._on_write = on_write

    @property
    def capabilities(self) -> CapabilitySet:
        base = super().capabilities
        return CapabilitySet({c for c in Capability if base.supports(c) and c not in self._without})

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if not name.startswith("_") and callable(attr) and name not in {"capabilities", "name"}:
            super().__getattribute__("calls").append(name)
        return attr

    def read(self, path: str) -> RecordingStream:  # type: ignore[override]
        with super().read(path) as inner:
            stream = RecordingStream(inner.read(), self._fail_after)
        self.streams.append(stream)
        return stream

    def write(self, path: str, content: Any, **kwargs: Any) -> Any:
        self.written.append(content)
        if self._on_write is not None:
            self._on_write(content)
        return super().write(path, content, **kwargs)

    def write_atomic(self, path: str, content: Any, **kwargs: Any) -> Any:
        self.written.append(content)
        return super().write_atomic(path, content, **kwargs)
