"""The exit codes of every command line: ``remote-store-transfer`` and ``python -m remote_store_transfer.audit``.

One set, at the bottom layer, so the CLI (:mod:`remote_store_transfer.cli.report`) and the audit package's
command line (:mod:`remote_store_transfer.audit.cli`) both read it without importing each other. Each command's
``--help`` says what each code means for it.
"""

__all__ = [
    "EXIT_DENIED",
    "EXIT_DESTINATION",
    "EXIT_ERROR",
    "EXIT_EXISTS",
    "EXIT_INTEGRITY",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
]

EXIT_OK = 0
"""Success."""
EXIT_ERROR = 1
"""Any other error (a store error, a plugin that failed to load, ...)."""
EXIT_USAGE = 2
"""Bad command line or configuration: unknown option, unknown store name, no registry, bad plugin config,
a store whose ``${VAR}`` is unset, a memory store, a folder copied into itself."""
EXIT_NOT_FOUND = 3
"""The source does not exist (``NotFound``, ``FileNotFoundError``), nor its bucket or container
(``ContainerNotFound``)."""
EXIT_EXISTS = 4
"""The destination exists and ``--overwrite`` was not given (``AlreadyExists``, ``FileExistsError``)."""
EXIT_DENIED = 5
"""Denied: by a plugin, built-in ``policy`` or third-party (``TransferDenied``), or by the store or file system
(``PermissionDenied``)."""
EXIT_INTEGRITY = 6
"""Integrity failure: a verifier rejected the transfer (``IntegrityError``), the source ended early
(``IncompleteTransferError``), an audit chain is broken, or a batch's file records are missing."""
EXIT_DESTINATION = 7
"""The destination cannot be written: a missing bucket or container, a local destination the process may not
write or that is a folder, a local parent that cannot be made (:class:`DestinationError`)."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (SIGINT)."""
