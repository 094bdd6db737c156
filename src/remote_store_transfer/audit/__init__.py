"""The audit log: a tamper-evident, hash-chained JSON Lines record of every transfer.

The package holds the built-in ``audit`` plugin and everything around it;
its public names are importable from here.
"""

from __future__ import annotations

from remote_store_transfer.audit.cli import main
from remote_store_transfer.audit.plugin import (
    FORMAT_VERSION,
    GENESIS,
    NAME,
    PLACEHOLDERS,
    AuditPlugin,
    AuditSink,
    FileAnchor,
    FileSink,
    HeadNotPublishedError,
    MissingRecord,
    StoreAnchor,
    StoreSink,
    VerifyReport,
    VerifyResult,
    chain_head,
    verify_chain,
    verify_logs,
    verify_store,
)

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
