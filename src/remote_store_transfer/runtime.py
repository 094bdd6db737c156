"""The process-wide plugin manager, and the public calls that configure a manager.

This module sits above both :mod:`remote_store_transfer.plugin.manager` (which
builds managers) and :mod:`remote_store_transfer.config` (which applies
settings to one): it builds the process-wide manager from the entry points,
the environment variables and the config file named by
``REMOTE_STORE_TRANSFER_CONFIG``, keeps it, and offers ``configure()``,
``enable_plugin()`` and ``disable_plugin()``, which act on it unless given
``manager=``. Nothing below imports this module; the public functions in
:mod:`remote_store_transfer.transfers` and the tree's worker processes call it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from remote_store_transfer import config as _config
from remote_store_transfer.plugin.manager import UNBLOCKABLE, TransferPluginManager, build_plugin_manager

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence

__all__ = [
    "HasPluginManager",
    "ManagerArg",
    "block_plugin",
    "build_from_environment",
    "configure",
    "disable_plugin",
    "enable_plugin",
    "plugin_manager",
    "reset_plugin_manager",
]


class HasPluginManager(Protocol):
    """What ``manager=`` accepts besides a plugin manager: a ``TransferManager``."""

    plugin_manager: TransferPluginManager


ManagerArg = HasPluginManager | TransferPluginManager | None
"""``manager=``: a ``TransferManager``, a plugin manager, or ``None`` for the process-wide one."""


def build_from_environment(blocked: Sequence[str] = ()) -> TransferPluginManager:
    """A new manager as the process-wide one is built: entry points, environment, config file.

    Used for the process-wide manager and by worker processes, which build
    theirs the same way from their own environment.

    Raises:
        PluginLoadError: An entry-point plugin failed to load.
        ConfigError: The file named by ``REMOTE_STORE_TRANSFER_CONFIG`` is unreadable or invalid.
    """
    pm = build_plugin_manager(entry_points=True, blocked=blocked, use_env=True)
    _config.apply_env_config(pm)
    return pm


_lock = threading.Lock()
_global: TransferPluginManager | None = None
_pending_blocks: list[str] = []


def plugin_manager() -> TransferPluginManager:
    """The process-wide plugin manager, built on first use (thread-safe).

    It has the built-in plugins and every entry-point plugin, minus what the
    environment variables and :func:`block_plugin` exclude, configured by the
    file named by ``REMOTE_STORE_TRANSFER_CONFIG``.

    Raises:
        PluginLoadError: An entry-point plugin failed to load (the manager is
            not kept: the next call tries again).
        ConfigError: The file named by ``REMOTE_STORE_TRANSFER_CONFIG`` is
            unreadable or invalid (the manager is not kept either).
    """
    pm = _global
    if pm is None:
        pm = _build_global()
    return pm


def _build_global() -> TransferPluginManager:
    global _global  # noqa: PLW0603
    with _lock:
        if _global is None:
            pm = build_from_environment(_pending_blocks)
            pm.process_wide = True
            _global = pm
        return _global


def block_plugin(name: str) -> None:
    """Block plugin *name* in the process-wide manager (now, or when it is built).

    Raises:
        ValueError: *name* is a built-in that cannot be blocked.
    """
    if name in UNBLOCKABLE:
        raise ValueError(f"plugin {name!r} is built in and cannot be blocked: on_progress depends on it")
    with _lock:
        _pending_blocks.append(name)
        if _global is not None:
            _global.set_blocked(name)


def reset_plugin_manager() -> None:
    """Forget the process-wide manager and pending blocks; the next use builds a new one.

    For tests, and for programs that changed the environment or installed
    plugins at run time.
    """
    global _global  # noqa: PLW0603
    with _lock:
        _global = None
        _pending_blocks.clear()


def _resolve(manager: ManagerArg) -> TransferPluginManager:
    if manager is None:
        return plugin_manager()
    if isinstance(manager, TransferPluginManager):
        return manager
    return manager.plugin_manager


def enable_plugin(name: str, *, manager: ManagerArg = None, **options: Any) -> object:
    """Enable built-in plugin *name* with *options* (its constructor's keyword arguments).

    Replaces the plugin of that name if it is already enabled.

    Example::

        enable_plugin("audit", path="/var/log/transfers.jsonl", key=Secret(os.environ["AUDIT_KEY"]))
        enable_plugin("policy", read_only=[archive_store], deny_overwrite=True)

    Args:
        name: ``"audit"``, ``"integrity"``, ``"policy"``, ``"logging"`` or ``"otel"``.
        manager: A ``TransferManager`` (or plugin manager) to enable it in,
            instead of the process-wide one.
        options: The plugin's options; see its class and its docs page.

    Returns:
        The plugin instance registered.

    Raises:
        ConfigError: Unknown plugin or option, invalid value, blocked name.
    """
    plugin = _config.make(name, options)  # a bad option fails before the process-wide manager is built
    return _config.enable(_resolve(manager), name, options, plugin=plugin)


def disable_plugin(name: str, *, manager: ManagerArg = None) -> bool:
    """Disable built-in plugin *name*; ``True`` if it was enabled.

    Raises:
        ConfigError: *name* is not a built-in plugin that can be enabled.
    """
    return _config.disable(_resolve(manager), name)


def configure(
    config: _config.TransferConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    manager: ManagerArg = None,
    record: bool = True,
) -> list[str]:
    """Apply a configuration: enable the plugins it enables, disable those it disables.

    Plugins it does not name are left as they are. Everything is validated
    (and every plugin built) before anything changes.

    Args:
        config: A TOML file path, a dict of the same shape, a
            :class:`~remote_store_transfer.config.TransferConfig`, or ``None``
            for the file named by ``REMOTE_STORE_TRANSFER_CONFIG`` (nothing
            happens when it is unset).
        manager: A ``TransferManager`` (or plugin manager) to configure
            instead of the process-wide one.
        record: Remember the settings so that trees run in worker processes
            apply them there too.

    Returns:
        The names of the plugins it enabled.

    Raises:
        ConfigError: Naming the file, key and problem.
    """
    settings = _config.read(config)  # a bad file fails before the process-wide manager is built
    if settings is None:
        return []
    return _config.apply(_resolve(manager), settings, record=record)
