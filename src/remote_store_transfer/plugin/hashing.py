"""A hasher that digests chunk N on a thread of its own while the caller reads and writes chunk N+1.

``hashlib`` releases the GIL while it hashes a buffer of more than 2 KiB, so the
digest of one chunk runs on the other CPU while the transfer moves the next:
the ``integrity`` plugin's cost mostly disappears behind the I/O.

One :class:`PipelinedHasher` per transfer. :meth:`~PipelinedHasher.feed`
hands a chunk over and returns at once, holding at most two chunks. A chunk
that may change (a ``memoryview`` of a reused buffer) is hashed before the next
``feed`` returns: that is what the core guarantees for ``on_chunk``'s
``data`` (``docs/hooks.md``). A ``bytes`` chunk cannot change, so the thread
may still hold it then (the second of the two).

The first :data:`INLINE_FIRST` bytes, and any chunk under :data:`PIPELINE_MIN`
bytes, are hashed inline, and so is all of a file known to be smaller than
``INLINE_FIRST`` + 1 MiB: starting a thread (about 0.1 ms) costs more than
the overlap gains on a file of a few MiB (measured on tmpfs), and a tiny
chunk costs less to hash than to hand over.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import hashlib

__all__ = ["INLINE_FIRST", "PIPELINE_MIN", "THREAD_NAME", "PipelinedHasher"]

INLINE_FIRST = 4 * 1_048_576
"""The first bytes of a transfer, hashed inline: a smaller file never starts a thread."""

PIPELINE_MIN = 65_536
"""Chunks smaller than this are hashed inline, never handed to the thread."""

THREAD_NAME = "remote-store-transfer-integrity"
"""The name of the hashing threads."""

_DEPTH = 2
"""At most this many chunks handed to the thread and not yet hashed."""


class PipelinedHasher:
    """Feeds *hasher* every chunk in order, on a worker thread once the first :data:`INLINE_FIRST` bytes are hashed.

    The worker thread (a daemon, started by the first chunk of at least
    :data:`PIPELINE_MIN` bytes after those) ends in :meth:`close`, which
    :meth:`hexdigest` calls too: call one of them whatever happens (the
    ``integrity`` plugin does, in ``post_transfer``).

    An exception raised by *hasher* on the thread is raised again by the next
    :meth:`feed` or by :meth:`hexdigest`: it never vanishes.
    """

    __slots__ = ("_done", "_error", "_hasher", "_held", "_in_flight", "_inline_left", "_mutable", "_thread", "_todo")

    def __init__(self, hasher: hashlib._Hash, size: int | None = None) -> None:
        """*size*: the number of bytes expected, when known (``context.size``)."""
        self._hasher = hasher
        small = size is not None and size < INLINE_FIRST + 1_048_576
        self._inline_left = sys.maxsize if small else INLINE_FIRST
        self._thread: threading.Thread | None = None
        self._todo: queue.SimpleQueue[memoryview | bytes | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[None] = queue.SimpleQueue()
        """One item per chunk the thread has finished."""
        self._in_flight = 0
        """Chunks handed to the thread and not finished."""
        self._mutable = False
        """The last chunk handed over may change once the next feed() returns: that feed() waits for it."""
        self._error: BaseException | None = None
        self._held: tuple[memoryview | bytes | None, ...] = (None,)
        """The last two chunks handed over, hashed or not (those in flight are among them)."""

    def feed(self, data: memoryview | bytes) -> None:
        """Hash *data* after the chunks fed before it.

        *data* must stay unchanged until the next ``feed`` returns (a ``bytes`` object always does).
        """
        if self._thread is None:
            if self._inline_left > 0 or len(data) < PIPELINE_MIN:
                self._inline_left -= len(data)
                self._hasher.update(data)
                return
            self._start()
        inline = len(data) < PIPELINE_MIN
        wait = self._done.get
        while self._in_flight and (inline or self._mutable or self._in_flight >= _DEPTH):
            wait()
            self._in_flight -= 1
        self._raise_error()
        if inline:
            self._hasher.update(data)
            return
        self._todo.put(data)
        self._in_flight += 1
        self._mutable = not isinstance(data, bytes)
        self._held = (self._held[-1], data)  # always the last two: memory does not depend on the thread's timing

    def hexdigest(self) -> str:
        """End the thread and return the digest of every chunk fed.

        Raises:
            Whatever the hasher raised on the thread.
        """
        self.close()
        self._raise_error()
        return self._hasher.hexdigest()

    def close(self) -> None:
        """End the thread, once it has hashed the chunks it holds (idempotent; no digest)."""
        thread = self._thread
        if thread is not None:
            self._thread = None
            self._todo.put(None)  # first, so that the thread ends even if the join below is interrupted
            thread.join()
            self._held = (None,)

    def _start(self) -> None:
        thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
        thread.start()
        self._thread = thread

    def _work(self) -> None:
        update, get, done = self._hasher.update, self._todo.get, self._done.put
        while (data := get()) is not None:
            try:
                if self._error is None:
                    update(data)
            except BaseException as exc:  # noqa: BLE001 -- handed to the transfer's thread, raised there
                exc.add_note("raised while hashing on the integrity plugin's thread")
                self._error = exc
            finally:
                data = None  # hold no chunk while waiting for the next: only those in flight (memory stays flat)
                done(None)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
