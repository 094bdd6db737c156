"""Exceptions raised by remote-store-transfer itself.

Errors raised by stores (``NotFound``, ``AlreadyExists``,
``CapabilityNotSupported``, ...) and by the local file system
(``FileNotFoundError``, ``FileExistsError``) propagate unchanged; these
classes cover what only this package can detect.
"""

from __future__ import annotations

from typing import Any

from remote_store import NotFound

__all__ = [
    "AuditError",
    "ConfigError",
    "ContainerNotFound",
    "DeleteLimitError",
    "DeletionsRefused",
    "IncompleteTransferError",
    "IntegrityError",
    "PluginLoadError",
    "SameFileError",
    "TransferDenied",
    "TransferError",
    "TreeOverlapError",
]


class TransferError(Exception):
    """Base class for errors raised by remote-store-transfer and its built-in plugins.

    Every subclass pickles with its attributes (and notes), so an error raised
    in a worker process reaches the caller as it was.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[TransferError], args: tuple[Any, ...], state: dict[str, Any]) -> TransferError:
    """Unpickle a :class:`TransferError` without calling the subclass's ``__init__`` again."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class PluginLoadError(TransferError):
    """A plugin could not be loaded or registered.

    The message names the plugin (its entry-point name), the distribution
    that declares it and its version, and says how to block it.

    Attributes:
        plugin: The entry-point name of the plugin.
        distribution: ``"name version"`` of the distribution, or ``None``.
    """

    def __init__(self, message: str, *, plugin: str, distribution: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.distribution = distribution


class TransferDenied(TransferError):
    """The ``policy`` plugin refused a transfer before any data moved.

    Attributes:
        rule: The rule that denied it (``"max_size"``, ``"read_only"``,
            ``"deny_overwrite"``, ``"upload.allow"``, ``"download.deny"``...).
        reason: Why, in words (the size, the matching pattern, the store...).
    """

    def __init__(self, rule: str, reason: str, *, transfer: str | None = None) -> None:
        where = f"{transfer} " if transfer else ""
        super().__init__(f"{where}denied by policy rule {rule!r}: {reason}")
        self.rule = rule
        self.reason = reason


class IntegrityError(TransferError):
    """The ``integrity`` plugin found that the destination does not hold the bytes that were sent.

    Attributes:
        algorithm: The hash algorithm (a ``hashlib`` name).
        expected: Hex digest of the bytes read from the source while they streamed.
        actual: Hex digest of what the destination holds.
        source: Description of the source (``Endpoint.describe()``).
        destination: Description of the destination.
    """

    def __init__(self, algorithm: str, expected: str, actual: str, source: str, destination: str) -> None:
        super().__init__(
            f"integrity check failed: {algorithm} of the bytes read from {source} is {expected}, "
            f"but {destination} holds bytes whose {algorithm} is {actual}"
        )
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        self.source = source
        self.destination = destination


class IncompleteTransferError(TransferError):
    """The source ended before ``TransferContext.size`` bytes had been read.

    A stream that ends early looks like a complete file to whoever reads it:
    remote-store's SFTP stream, for one, can end without an error when the
    connection drops (paramiko turns a failed send into end-of-file). When
    the size is known (the local file of an upload, or a size a
    ``pre_transfer`` plugin set, as ``integrity`` and ``policy`` do) the core
    raises this error instead of reporting success; the tree calls set the
    size from their listing. When the check fires
    before the destination is committed (every download; every atomic call;
    an upload or a transfer whose chunks are observed, by ``on_progress`` or
    an ``on_chunk`` plugin such as ``integrity``) an ``atomic=True``
    destination is left untouched. When it can only fire after the store's
    ``write`` returned (a non-atomic upload or transfer nothing observes,
    whose stream goes to the store unwrapped), the destination holds the
    *received* bytes and the message says so.

    Attributes:
        transfer: Description of the call (``TransferContext.describe()``: operation and both ends).
        expected: The size the source had when the call began.
        received: The bytes read before the source reported its end.
    """

    def __init__(self, transfer: str, expected: int, received: int, *, written: bool = False) -> None:
        after = "; the destination already holds those bytes" if written else ""
        super().__init__(f"{transfer} is incomplete: the source ended after {received} of {expected} bytes{after}")
        self.transfer = transfer
        self.expected = expected
        self.received = received


class AuditError(TransferError):
    """The ``audit`` plugin could not write the record of a transfer.

    Raised (with ``on_failure = "raise"``, the default) from ``post_transfer``.
    On a transfer that had succeeded, the caller gets this error although the
    bytes did move: an unrecorded transfer must not look like a clean success.
    On a transfer that had failed, the caller gets the original error, with a
    note that names this one. Either way the record is also logged at ERROR
    on the ``remote_store_transfer`` logger.

    Attributes:
        record: The (redacted) record that could not be written.
        outcome: ``"success"`` or ``"failure"``: how the transfer itself ended.
    """

    def __init__(self, message: str, *, record: dict[str, object] | None = None, outcome: str | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.outcome = outcome


class ConfigError(TransferError):
    """The plugin configuration is invalid: unreadable file, unknown plugin or key, wrong type.

    Attributes:
        file: The configuration file, or ``None`` for an API call.
        key: The dotted key at fault (``"plugins.audit.path"``), or ``None``.
        problem: What is wrong with it.
    """

    def __init__(self, problem: str, *, file: str | None = None, key: str | None = None) -> None:
        where = file if file is not None else "plugin configuration"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem


class TreeOverlapError(TransferError, ValueError):
    """A tree call whose destination lies inside its source, or its source inside its destination.

    Raised before anything is listed or moved: a tree copied into itself
    would copy its own copies, and ``delete`` could remove the source.

    Attributes:
        source: Description of the source root.
        destination: Description of the destination root.
    """

    def __init__(self, source: str, destination: str) -> None:
        super().__init__(
            f"refusing to copy a tree into itself: {destination} overlaps the source {source} "
            "(one lies inside the other)"
        )
        self.source = source
        self.destination = destination


class SameFileError(TransferError, ValueError):
    """The destination of a transfer is its own source: the same file, however it was spelled.

    Raised before anything is opened for writing (writing would truncate the
    file while it is being read, and leave it empty). It covers the same local
    file through ``./``, ``//``, a symlink or a hard link; a local store's file
    given as the local side of an upload or a download; the same store
    location reached through another ``Store`` object or a ``child()`` alias.

    Attributes:
        source: Description of the source.
        destination: Description of the destination.
    """

    def __init__(self, operation: str, source: str, destination: str) -> None:
        super().__init__(
            f"{operation} refused: the destination {destination} is the source {source} itself "
            "(writing it would destroy what is being read)"
        )
        self.source = source
        self.destination = destination


class ContainerNotFound(TransferError, NotFound):
    """The bucket or container (or the root folder) of a tree's source store does not exist.

    A prefix that does not exist in an existing bucket is an empty source; a
    bucket that does not exist is an error (a mistyped name must not read as
    "nothing to copy"). A tree records it as the failure under the empty path
    ``""``, so nothing is deleted. A :class:`remote_store.NotFound` too (the
    command line's exit code 3).

    Attributes:
        source: Description of the source root.
        container: The bucket, container or root folder that is missing, when the store names it.
    """

    def __init__(self, source: str, container: str | None = None) -> None:
        what = f"{container!r} " if container else ""
        super().__init__(f"the bucket, container or root folder {what}of the source {source} does not exist")
        self.source = source
        self.container = container


class DeletionsRefused(TransferError):
    """A tree with ``delete=True`` deleted nothing, on purpose: the evidence that the source is complete is missing.

    Reported as the tree's failure under ``""``: the source held no file at
    all (an empty or mistyped source would wipe the destination), or more
    files would go than ``max_delete`` allows (:class:`DeleteLimitError`).
    """


class DeleteLimitError(DeletionsRefused):
    """A tree with ``delete=True`` would delete more destination files than ``max_delete`` allows.

    Nothing is deleted: a source listing that ended early without an error
    would otherwise read as "these files were removed at the source".

    Attributes:
        would_delete: How many files the run would have deleted.
        limit: How many it may delete (``max_delete`` resolved against the destination).
        max_delete: The option as given (a count, or a percentage such as ``"50%"``).
        destination_files: The destination files the filters take (what a percentage is of).
    """

    def __init__(
        self, destination: str, would_delete: int, limit: int, max_delete: int | str, destination_files: int
    ) -> None:
        super().__init__(
            f"refusing to delete {would_delete} of the {destination_files} files under {destination}: "
            f"max_delete={max_delete!r} allows at most {limit}; nothing was deleted. If the source "
            "listing is complete, raise the limit (max_delete=N or 'P%', --max-delete on the command line) "
            "or give max_delete=None (--max-delete none) for no limit"
        )
        self.would_delete = would_delete
        self.limit = limit
        self.max_delete = max_delete
        self.destination_files = destination_files
