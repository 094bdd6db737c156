"""The plugin layer: project name, hook markers and where things live.

* :mod:`remote_store_transfer.plugin.spec` -- the hook specifications.
* :mod:`remote_store_transfer.plugin.manager` -- builds the plugin manager.
* :mod:`remote_store_transfer.plugin.progress` -- the built-in progress plugin.

A plugin is any module or object with functions decorated by :data:`hookimpl`::

    from remote_store_transfer import hookimpl

    @hookimpl
    def post_transfer(context, error):
        print(context.operation, context.bytes_transferred, error)
"""

from __future__ import annotations

import pluggy

__all__ = ["ENTRY_POINT_GROUP", "PLUGIN_NAMES", "PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "remote_store_transfer"
"""The pluggy project name; hook markers must be made with it."""

ENTRY_POINT_GROUP = "remote_store_transfer"
"""Entry-point group in which third-party distributions declare their plugins."""

PLUGIN_NAMES = ("audit", "integrity", "policy", "logging", "otel")
"""The built-in plugins that can be enabled (``progress`` is always on); see :mod:`remote_store_transfer.config`."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (used by this package only)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: decorate your plugin's functions with it."""
