"""Where a chain's head is published after each record: a local file or a ``Store`` object."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING, Protocol

from remote_store_transfer.audit.placeholders import expand, is_template
from remote_store_transfer.errors import AuditError

if TYPE_CHECKING:
    from remote_store import Store

__all__ = ["Anchor", "FileAnchor", "HeadNotPublishedError", "StoreAnchor"]


class FileAnchor:
    """Publish a chain's head to a local file, replaced atomically (a temp file, ``fsync``, rename).

    Give it a place with its own permissions (the log's writers may write
    it, but whoever could rewrite the log should not be able to rewrite it
    unseen: e.g. a file another system copies away, or a directory with an
    append-only backup). ``{host}`` and ``{pid}`` are expanded as in a
    :class:`FileSink` path.

    Raises:
        ValueError: *path* holds an unknown placeholder or a lone brace.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        text = os.fspath(path)
        self._templated = is_template(text, "anchor_path")
        self.template = os.path.abspath(text)
        """The path as configured (absolute), placeholders and all."""

    @property
    def path(self) -> str:
        """The file this process writes: the template with this process's ``{host}`` and ``{pid}``."""
        return expand(self.template) if self._templated else self.template

    def describe(self) -> str:
        return f"file {self.path}"

    def __repr__(self) -> str:
        return f"FileAnchor({self.template!r})"

    def publish(self, head: str) -> None:
        """Replace the file's content with *head* (and a newline), atomically and durably."""
        path = self.path
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(temp, flags, 0o640)
        try:
            try:
                data = memoryview(head.encode("ascii") + b"\n")
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if hasattr(os, "O_DIRECTORY"):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class StoreAnchor:
    """Publish a chain's head to the object *name* of a ``Store``, overwritten atomically each time.

    ``{host}`` and ``{pid}`` in *name* are expanded as in a :class:`FileSink` path.

    Raises:
        ValueError: *name* is empty, or holds an unknown placeholder or a lone brace.
    """

    def __init__(self, store: Store, name: str = "audit-head") -> None:
        self.store = store
        self.template = name.strip("/")
        """The object name as configured, placeholders and all."""
        if not self.template:
            raise ValueError("the audit anchor_name must not be empty")
        self._templated = is_template(self.template, "anchor_name")

    @property
    def name(self) -> str:
        """The object this process writes."""
        return expand(self.template) if self._templated else self.template

    def describe(self) -> str:
        return f"{self.store!r}:{self.name}"

    def __repr__(self) -> str:
        return f"StoreAnchor({self.store!r}, {self.template!r})"

    def publish(self, head: str) -> None:
        """Replace the object's content with *head* (and a newline)."""
        self.store.write_atomic(self.name, head.encode("ascii") + b"\n", overwrite=True)


class Anchor(Protocol):
    template: str

    def publish(self, head: str) -> None: ...

    def describe(self) -> str: ...


class HeadNotPublishedError(AuditError):
    """The record was written to the log, but the chain head could not be published to the anchor."""
