"""The audit log: a tamper-evident, hash-chained JSON Lines record of every transfer.

Modules, each importing only those listed before it:

* :mod:`~remote_store_transfer.audit.records` -- the record line and chain head formats, the key.
* :mod:`~remote_store_transfer.audit.placeholders` -- ``{host}`` and ``{pid}`` in paths and names.
* :mod:`~remote_store_transfer.audit.anchors` -- publishing the chain head: :class:`FileAnchor`, :class:`StoreAnchor`.
* :mod:`~remote_store_transfer.audit.sinks` -- writing records: :class:`FileSink`, :class:`StoreSink`.
* :mod:`~remote_store_transfer.audit.chain` -- verifying one chain: :func:`verify_chain`, :func:`chain_head`.
* :mod:`~remote_store_transfer.audit.logs` -- verifying a set of logs and their batch records:
  :func:`verify_logs`, :func:`verify_store`.
* :mod:`~remote_store_transfer.audit.plugin` -- the plugin: :class:`AuditPlugin`.
* :mod:`~remote_store_transfer.audit.cli` -- the command line (``python -m remote_store_transfer.audit``,
  and ``remote-store-transfer audit``).

The public names of these modules are importable from here.
"""

from __future__ import annotations

from remote_store_transfer.audit.anchors import FileAnchor, HeadNotPublishedError, StoreAnchor
from remote_store_transfer.audit.chain import VerifyResult, chain_head, verify_chain
from remote_store_transfer.audit.cli import main
from remote_store_transfer.audit.logs import MissingRecord, VerifyReport, verify_logs, verify_store
from remote_store_transfer.audit.placeholders import PLACEHOLDERS
from remote_store_transfer.audit.plugin import NAME, AuditPlugin
from remote_store_transfer.audit.records import FORMAT_VERSION, GENESIS
from remote_store_transfer.audit.sinks import AuditSink, FileSink, StoreSink

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "NAME",
    "PLACEHOLDERS",
    "AuditPlugin",
    "AuditSink",
    "FileAnchor",
    "FileSink",
    "HeadNotPublishedError",
    "MissingRecord",
    "StoreAnchor",
    "StoreSink",
    "VerifyReport",
    "VerifyResult",
    "chain_head",
    "main",
    "verify_chain",
    "verify_logs",
    "verify_store",
]
