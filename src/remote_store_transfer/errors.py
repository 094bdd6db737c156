"""Exceptions raised by remote-store-transfer itself.

Errors raised by stores (``NotFound``, ``AlreadyExists``,
``CapabilityNotSupported``, ...) and by the local file system
(``FileNotFoundError``, ``FileExistsError``) propagate unchanged; these
classes cover what only this package can detect.
"""

from __future__ import annotations

__all__ = ["PluginLoadError", "TransferError"]


class TransferError(Exception):
    """Base class for errors raised by remote-store-transfer and its built-in plugins."""


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
