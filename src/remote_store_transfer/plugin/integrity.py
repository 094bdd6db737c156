"""The built-in ``integrity`` plugin: a digest of the bytes as they stream, optionally verified after the write.

Enable it with ``enable_plugin("integrity", algorithm="sha256", verify=True)``
or ``[plugins.integrity]`` in the config file (see ``docs/plugins/integrity.md``).

* ``pre_transfer`` makes a ``hashlib`` hasher; ``on_chunk`` feeds it every
  chunk, so the digest costs no extra read. From the second chunk on, the
  hashing runs on a thread of the transfer's own
  (:class:`~remote_store_transfer.plugin.hashing.PipelinedHasher`): chunk N is
  digested while chunk N+1 is read and written. With ``check_size`` (the
  default) it also asks a source store for the file's size
  (``get_file_info``, one metadata call) and sets ``context.size``: the core
  then raises :class:`~remote_store_transfer.IncompleteTransferError` if the
  source stream ends early, before the destination is committed. A digest of
  a truncated stream would match a truncated destination, so this is the
  check that makes "end-to-end" hold at the source end.
* ``post_transfer`` (``tryfirst``: before the other plugins, so that ``audit``
  sees its verdict) stores a :class:`Digest` on the context when the bytes
  all moved, and with ``verify=True`` reads the destination back and compares:
  a mismatch raises :class:`~remote_store_transfer.IntegrityError`, which
  turns the call into a failure.

The caller gets the digest through :func:`remote_store_transfer.capture` and
:func:`digest_of`; other plugins read it with :func:`digest_of` too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remote_store import Capability, checksum

from remote_store_transfer.errors import IntegrityError
from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.plugin.hashing import PipelinedHasher

if TYPE_CHECKING:
    from remote_store_transfer.context import Endpoint, TransferContext

__all__ = ["NAME", "STATE_KEY", "Digest", "IntegrityPlugin", "digest_of"]

NAME = "integrity"
STATE_KEY = "integrity"
"""Key of the :class:`Digest` in ``TransferContext.state``."""

_HASHER_KEY = "integrity.hasher"


@dataclass(frozen=True)
class Digest:
    """The digest of the bytes one transfer moved.

    Attributes:
        algorithm: The ``hashlib`` name (``"sha256"``...).
        hexdigest: Lowercase hex digest of every byte read from the source.
        verified: ``True`` when the destination was read back (or its
            backend digest compared) and matched; ``False`` when it did not
            (the call then raised :class:`~remote_store_transfer.IntegrityError`);
            ``None`` when no verification was asked for.
    """

    algorithm: str
    hexdigest: str
    verified: bool | None = None


def digest_of(context: TransferContext) -> Digest | None:
    """The :class:`Digest` the ``integrity`` plugin left on *context*.

    ``None`` when the plugin was not enabled for that call, or when the call
    failed before all its bytes moved (a digest of part of a file would be
    misleading).
    """
    digest = context.state.get(STATE_KEY)
    return digest if isinstance(digest, Digest) else None


class IntegrityPlugin:
    """Hash the bytes of every transfer as they stream; optionally verify the destination.

    Args:
        algorithm: Any name ``hashlib.new`` accepts (case does not matter) that gives a fixed-size
            digest (``"sha256"``, ``"sha512"``, ``"blake2b"``, ``"md5"``...).
        verify: After a successful write, read the destination back (the
            store file with ``store.read()``, or the local file of a
            download) and compare digests.
        trust_backend_digest: When verifying, use the digest the store
            reports through its public API (``WriteResult.digest``, then
            ``store.get_file_info().digest``) if it is of the same algorithm,
            instead of reading the file back. Set to ``False`` to always
            read back.
        check_size: Before a ``download`` or ``transfer``, ask the source
            store for the file's size (when it supports
            ``Capability.METADATA``) so that a source that ends early fails
            the call (:class:`~remote_store_transfer.IncompleteTransferError`)
            instead of passing as a complete, smaller file.

    Raises:
        ValueError: *algorithm* is unknown to ``hashlib`` or has no fixed-size digest.
    """

    def __init__(
        self,
        *,
        algorithm: str = "sha256",
        verify: bool = False,
        trust_backend_digest: bool = True,
        check_size: bool = True,
    ) -> None:
        if not isinstance(algorithm, str):
            raise TypeError(f"algorithm must be a string, got {type(algorithm).__name__}")
        try:
            hasher = hashlib.new(algorithm.lower())
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"unknown hash algorithm {algorithm!r}; available: {', '.join(sorted(hashlib.algorithms_available))}"
            ) from exc
        if hasher.digest_size == 0:  # shake_128 / shake_256 need a length
            raise ValueError(f"hash algorithm {algorithm!r} has no fixed digest size; choose another")
        self.algorithm = hasher.name
        self.verify = bool(verify)
        self.trust_backend_digest = bool(trust_backend_digest)
        self.check_size = bool(check_size)

    def __repr__(self) -> str:
        return f"IntegrityPlugin(algorithm={self.algorithm!r}, verify={self.verify}, check_size={self.check_size})"

    @hookimpl
    def pre_transfer(self, context: TransferContext) -> None:
        store, path = context.source.store, context.source.path
        if self.check_size and context.size is None and store is not None and store.supports(Capability.METADATA):
            context.size = store.get_file_info(path).size  # the core fails the call if the source ends short of it
        context.state[_HASHER_KEY] = PipelinedHasher(hashlib.new(self.algorithm), context.size)

    @hookimpl
    def on_chunk(self, context: TransferContext, data: memoryview | bytes) -> None:
        context.state[_HASHER_KEY].feed(data)

    @hookimpl(tryfirst=True)
    def post_transfer(self, context: TransferContext, error: BaseException | None) -> None:
        hasher: PipelinedHasher | None = context.state.pop(_HASHER_KEY, None)
        if hasher is None:
            return
        if error is not None:
            hasher.close()  # the thread ends; no digest of part of a file
            return
        expected = hasher.hexdigest()
        if not self.verify:
            context.state[STATE_KEY] = Digest(self.algorithm, expected)
            return
        actual = self._destination_digest(context)
        ok = actual == expected
        context.state[STATE_KEY] = Digest(self.algorithm, expected, verified=ok)
        if not ok:
            raise IntegrityError(
                self.algorithm, expected, actual, context.source.describe(), context.destination.describe()
            )

    def _destination_digest(self, context: TransferContext) -> str:
        """Hex digest of what the destination holds now."""
        destination: Endpoint = context.destination
        store = destination.store
        if store is None:  # download: the local file
            with open(destination.path, "rb") as fh:
                return hashlib.file_digest(fh, self.algorithm).hexdigest()
        if self.trust_backend_digest:
            reported = context.write_result.digest if context.write_result is not None else None
            if (reported is None or reported.algorithm != self.algorithm) and store.supports(Capability.METADATA):
                reported = store.get_file_info(destination.path).digest
            if reported is not None and reported.algorithm == self.algorithm:
                return reported.value
        return checksum(store, destination.path, self.algorithm)[1]  # remote-store reads it back in chunks
