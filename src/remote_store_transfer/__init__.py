"""remote-store-transfer: streaming upload / download / transfer for remote-store, open to plugins.

>>> from remote_store import Store
>>> from remote_store.backends import MemoryBackend
>>> from remote_store_transfer import upload, download, transfer
"""

from __future__ import annotations

from remote_store_transfer.capturing import capture
from remote_store_transfer.context import DeleteContext, Endpoint, TransferContext
from remote_store_transfer.errors import (
    AuditError,
    ConfigError,
    ContainerNotFound,
    DeleteLimitError,
    DeletionsRefused,
    IncompleteTransferError,
    IntegrityError,
    PluginLoadError,
    SameFileError,
    TransferDenied,
    TransferError,
    TreeOverlapError,
)
from remote_store_transfer.plugin import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from remote_store_transfer.plugin.manager import PluginInfo
from remote_store_transfer.runtime import (
    block_plugin,
    configure,
    disable_plugin,
    enable_plugin,
    plugin_manager,
    reset_plugin_manager,
)
from remote_store_transfer.transfers import (
    TransferManager,
    download,
    download_tree,
    transfer,
    transfer_tree,
    upload,
    upload_tree,
)
from remote_store_transfer.tree import Batch, FileOutcome, TreeResult
from remote_store_transfer.tree.shipping import CannotTravel, allow_pickled, registry_store
from remote_store_transfer.version import __version__

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "AuditError",
    "Batch",
    "CannotTravel",
    "ConfigError",
    "ContainerNotFound",
    "DeleteContext",
    "DeleteLimitError",
    "DeletionsRefused",
    "Endpoint",
    "FileOutcome",
    "IncompleteTransferError",
    "IntegrityError",
    "PluginInfo",
    "PluginLoadError",
    "SameFileError",
    "TransferContext",
    "TransferDenied",
    "TransferError",
    "TransferManager",
    "TreeOverlapError",
    "TreeResult",
    "__version__",
    "allow_pickled",
    "block_plugin",
    "capture",
    "configure",
    "disable_plugin",
    "download",
    "download_tree",
    "enable_plugin",
    "hookimpl",
    "list_plugins",
    "plugin_manager",
    "registry_store",
    "reset_plugin_manager",
    "transfer",
    "transfer_tree",
    "upload",
    "upload_tree",
]


def list_plugins() -> list[PluginInfo]:
    """The active (and blocked) plugins of the process-wide manager: name, distribution, version."""
    return plugin_manager().list_plugins()
