"""Builds plugin managers: hook specs, then the built-in plugins, then entry points.

:func:`build_plugin_manager` builds each manager: the process-wide one (kept by
:mod:`remote_store_transfer.runtime`, which also applies the config file) and the
isolated ones of :class:`~remote_store_transfer.TransferManager`. This module
knows nothing of the config file or of the process-wide manager.

Third-party plugins are found through the entry-point group
``remote_store_transfer``. Two environment variables steer the process-wide
manager:

* ``REMOTE_STORE_TRANSFER_DISABLE_PLUGIN_AUTOLOAD=1`` -- load no entry points
  (built-in plugins stay).
* ``REMOTE_STORE_TRANSFER_BLOCK_PLUGINS=name1,name2`` -- never load or
  register plugins with these names.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from remote_store_transfer.errors import PluginLoadError
from remote_store_transfer.plugin import ENTRY_POINT_GROUP, PLUGIN_NAMES, PROJECT_NAME, progress, spec
from remote_store_transfer.plugin.calling import NO_WRAPPERS, implementations

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from pluggy import HookCaller

    from remote_store_transfer.context import TransferContext

    ChunkHook = Callable[[TransferContext, int, memoryview | bytes], object]
    """``chunk(context, nbytes, data)``: the ``on_chunk`` hook with positional arguments."""

__all__ = [
    "BLOCK_ENV",
    "BUILTIN_PLUGINS",
    "DISABLE_AUTOLOAD_ENV",
    "DISTRIBUTION",
    "NO_WRAPPERS",
    "UNBLOCKABLE",
    "Dispatch",
    "PluginInfo",
    "TransferPluginManager",
    "build_plugin_manager",
    "own_version",
]

log = logging.getLogger("remote_store_transfer")

DISTRIBUTION = "remote-store-transfer"
DISABLE_AUTOLOAD_ENV = "REMOTE_STORE_TRANSFER_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "REMOTE_STORE_TRANSFER_BLOCK_PLUGINS"

BUILTIN_PLUGINS: tuple[tuple[str, object], ...] = ((progress.NAME, progress),)
"""``(name, plugin)`` pairs registered in every manager, before any entry point."""

UNBLOCKABLE = frozenset({progress.NAME})
_FALSY = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class PluginInfo:
    """One plugin known to a manager.

    Attributes:
        name: The name it is registered (or blocked) under; for entry-point
            plugins, the entry-point name.
        distribution: The distribution that provides it (``None`` for a
            plugin registered by hand).
        version: That distribution's version.
        builtin: ``True`` for plugins shipped in this package.
        blocked: ``True`` when the name is blocked (the plugin is not active).
    """

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    blocked: bool = False


class Dispatch:
    """What the streaming core needs from a manager, computed once per plugin set.

    Rebuilt whenever a plugin is registered, unregistered or blocked.

    Attributes:
        pre: The ``pre_transfer`` hook caller, or ``None`` when nothing implements it.
        chunk: ``on_chunk`` as a plain ``chunk(context, nbytes, data)``
            callable for the hot loop: each implementation is called directly,
            in pluggy's order, with the arguments it asks for (as pluggy
            would, without building a kwargs dict per chunk). It goes through
            the hook caller instead when an implementation is a wrapper or
            takes keyword arguments, or when hook-call monitoring (tracing)
            is on.
        chunk_observers: ``True`` when a plugin other than ``progress``
            implements ``on_chunk`` (chunks must then be observed even without
            ``on_progress``).
        post: ``(plugin name, function, argument names)`` of each
            ``post_transfer`` implementation, in call order.
        pre_delete: The ``pre_delete`` hook caller, or ``None`` when nothing implements it.
        post_delete: The ``post_delete`` implementations, as :attr:`post`.
        unobserved: ``True`` when only the built-in ``progress`` plugin
            implements a per-call hook (no ``pre_transfer``, ``post_transfer``
            nor other ``on_chunk``) and no hook-call monitor is on: a call is
            then seen by no hook, and its ``on_progress`` may be called
            directly, without building a context.
    """

    __slots__ = ("chunk", "chunk_observers", "post", "post_delete", "pre", "pre_delete", "unobserved")

    def __init__(self, pm: pluggy.PluginManager, *, monitored: bool = False) -> None:
        hook = pm.hook
        self.pre: HookCaller | None = hook.pre_transfer if hook.pre_transfer.get_hookimpls() else None
        self.chunk: ChunkHook = _chunk_caller(hook.on_chunk, monitored)
        self.chunk_observers = any(i.plugin_name != progress.NAME for i in hook.on_chunk.get_hookimpls())
        self.post = implementations(hook.post_transfer)
        self.pre_delete: HookCaller | None = hook.pre_delete if hook.pre_delete.get_hookimpls() else None
        self.post_delete = implementations(hook.post_delete)
        only_progress = [i.plugin_name for i in hook.on_chunk.get_hookimpls()] == [progress.NAME]
        self.unobserved = self.pre is None and not self.post and only_progress and not monitored


_CHUNK_ARGS = ("context", "nbytes", "data")


def _ignore_chunk(context: TransferContext, nbytes: int, data: memoryview | bytes) -> None:
    """``on_chunk`` when nothing implements it."""


def _positional(function: Callable[..., object], argnames: tuple[str, ...]) -> ChunkHook:
    """*function* as a ``(context, nbytes, data)`` callable that passes only the names it asks for."""
    if argnames == _CHUNK_ARGS:
        return function
    if argnames == ("context", "nbytes"):  # the built-in progress plugin
        return lambda context, nbytes, data: function(context, nbytes)
    positions = tuple(_CHUNK_ARGS.index(name) for name in argnames)

    def call(*args: object) -> object:
        return function(*[args[i] for i in positions])

    return call


def _chunk_caller(caller: HookCaller, monitored: bool) -> ChunkHook:
    """The ``on_chunk`` hook as one positional callable (see :attr:`Dispatch.chunk`)."""
    impls = caller.get_hookimpls()
    if monitored or any(i.hookwrapper or i.wrapper or i.kwargnames for i in impls):

        def call_hook(context: TransferContext, nbytes: int, data: memoryview | bytes) -> None:
            caller(context=context, nbytes=nbytes, data=data)

        return call_hook
    # pluggy calls implementations last-registered first: the reverse of get_hookimpls().
    calls = tuple(_positional(i.function, i.argnames) for i in reversed(impls))
    if not calls:
        return _ignore_chunk
    if len(calls) == 1:
        return calls[0]

    def call_each(context: TransferContext, nbytes: int, data: memoryview | bytes) -> None:
        for call in calls:
            call(context, nbytes, data)

    return call_each


class TransferPluginManager(pluggy.PluginManager):
    """A ``pluggy.PluginManager`` with this package's hook specs, dispatch cache and plugin listing."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self._dispatch: Dispatch | None = None
        self._origins: dict[str, tuple[str | None, str | None, bool]] = {}
        self._blocked_names: set[str] = set()
        self._monitors = 0
        self.settings: dict[str, dict[str, Any] | None] = {}
        """The built-in plugin settings made through ``configure()`` / ``enable_plugin()`` /
        ``disable_plugin()`` (name -> options, ``None`` for disabled), in order; not those of the
        ``REMOTE_STORE_TRANSFER_CONFIG`` file. A tree run in worker processes ships them."""
        self.process_wide = False
        """``True`` for the process-wide manager (:func:`remote_store_transfer.runtime.plugin_manager`)."""
        self.entry_points_loaded = False
        """``True`` once :meth:`load_entry_points` ran (worker processes then load them too)."""
        self.add_hookspecs(spec)

    @property
    def dispatch(self) -> Dispatch:
        """The cached :class:`Dispatch` for the current set of plugins."""
        dispatch = self._dispatch
        if dispatch is None:
            dispatch = self._dispatch = Dispatch(self, monitored=self._monitors > 0)
        return dispatch

    def add_hookcall_monitoring(
        self,
        before: Callable[[str, Sequence[pluggy.HookImpl], Mapping[str, Any]], None],
        after: Callable[[pluggy.Result[Any], str, Sequence[pluggy.HookImpl], Mapping[str, Any]], None],
    ) -> Callable[[], None]:
        """Monitor hook calls (see pluggy); ``on_chunk`` then goes through pluggy so monitors see it."""
        undo_monitoring = super().add_hookcall_monitoring(before, after)
        self._monitors += 1
        self._dispatch = None

        def undo() -> None:
            undo_monitoring()
            self._monitors -= 1
            self._dispatch = None

        return undo

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
        builtin: bool = False,
    ) -> str | None:
        """Register *plugin* (a module or object with hook implementations).

        Returns the name it was registered under, or ``None`` if the name is
        blocked.

        Raises:
            ValueError: The plugin or its name is already registered.
            pluggy.PluginValidationError: A hook implementation does not match
                its spec, names an unknown hook, or is a wrapper of ``post_transfer``,
                ``post_batch`` or ``post_delete`` (:data:`NO_WRAPPERS`).
        """
        registered = super().register(plugin, name)
        if registered is None:
            return None
        self._dispatch = None
        try:
            self._check(plugin, registered)
        except BaseException:
            self.unregister(plugin)
            raise
        self._origins[registered] = (distribution, version, builtin)
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        """Unregister a plugin by object or name (see ``pluggy.PluginManager.unregister``)."""
        removed = super().unregister(plugin, name)
        self._dispatch = None
        if name is None and removed is not None:
            name = self.get_name(removed)
        for known, obj in list(self._origins.items()):
            if known == name or obj is removed:
                self._origins.pop(known, None)
        return removed

    def set_blocked(self, name: str) -> None:
        """Block *name*: unregister the plugin of that name now and refuse it later.

        Raises:
            ValueError: *name* is a built-in plugin that cannot be blocked (``progress``).
        """
        if name in UNBLOCKABLE:
            raise ValueError(f"plugin {name!r} is built in and cannot be blocked: on_progress depends on it")
        self._origins.pop(name, None)
        super().set_blocked(name)
        self._blocked_names.add(name)
        self._dispatch = None

    @property
    def blocked_names(self) -> frozenset[str]:
        """The names blocked in this manager."""
        return frozenset(self._blocked_names)

    def unblock(self, name: str) -> bool:
        """Allow *name* to be registered again; ``True`` if it was blocked."""
        self._blocked_names.discard(name)
        return super().unblock(name)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> int:
        """Load and register every plugin declared in entry-point *group*.

        Blocked and already registered names are skipped. Each load is logged
        with the distribution's name and version.

        Returns:
            How many plugins were registered.

        Raises:
            PluginLoadError: A plugin failed to import or to register; the
                message names it and its distribution.
        """
        count = 0
        self.entry_points_loaded = True
        for ep in importlib.metadata.entry_points(group=group):
            if self.is_blocked(ep.name) or self.has_plugin(ep.name):
                continue
            dist_name = ep.dist.metadata["Name"] if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            where = f"distribution {dist_name} {version}" if dist_name else "an unknown distribution"
            hint = f"; to run without it, set {BLOCK_ENV}={ep.name}"
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {ep.name!r} ({ep.value}) from {where} failed to import: {type(exc).__name__}: {exc}{hint}",
                    plugin=ep.name,
                    distribution=f"{dist_name} {version}" if dist_name else None,
                ) from exc
            try:
                self.register(plugin, name=ep.name, distribution=dist_name, version=version)
            except (pluggy.PluginValidationError, ValueError) as exc:
                raise PluginLoadError(
                    f"plugin {ep.name!r} ({ep.value}) from {where} is invalid: {exc}{hint}",
                    plugin=ep.name,
                    distribution=f"{dist_name} {version}" if dist_name else None,
                ) from exc
            log.info("loaded plugin %s from %s", ep.name, where, extra={"plugin": ep.name, "dist": dist_name})
            count += 1
        return count

    def list_plugins(self) -> list[PluginInfo]:
        """Every registered plugin (in registration order), then every blocked name."""
        active = [
            PluginInfo(name, *self._origins.get(name, (None, None, False)))
            for name, plugin in self.list_name_plugin()
            if plugin is not None
        ]
        version = own_version()
        blocked = [
            PluginInfo(name, DISTRIBUTION, version, builtin=True, blocked=True)
            if name in PLUGIN_NAMES
            else PluginInfo(name, None, None, builtin=False, blocked=True)
            for name in sorted(self._blocked_names)
        ]
        return active + blocked

    def _check(self, plugin: object, name: str) -> None:
        for caller in self.get_hookcallers(plugin) or ():
            if caller.spec is None:
                raise pluggy.PluginValidationError(plugin, f"plugin {name!r} implements unknown hook {caller.name!r}")
            if caller.name in NO_WRAPPERS:  # each implementation is called on its own (call_each)
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper):
                        raise pluggy.PluginValidationError(
                            plugin,
                            f"plugin {name!r}: {caller.name} cannot be a wrapper (wrapper=True / hookwrapper=True): "
                            "each implementation is called on its own, so that one failing plugin never keeps "
                            "another from running; implement it as a plain hook",
                        )


def own_version() -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return None


def _env_blocked() -> list[str]:
    return [n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()]


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in _FALSY


def build_plugin_manager(
    plugins: Iterable[object] = (),
    *,
    entry_points: bool = False,
    blocked: Sequence[str] = (),
    use_env: bool = False,
) -> TransferPluginManager:
    """Build a new, independent plugin manager.

    Order: hook specs, blocked names, built-in plugins, *plugins*, then entry
    points (when *entry_points* is true and, with *use_env*, autoload is not
    disabled).

    Args:
        plugins: Extra plugins to register (modules or objects with hook
            implementations).
        entry_points: Load third-party plugins from the entry-point group.
        blocked: Plugin names never to register.
        use_env: Also honour ``REMOTE_STORE_TRANSFER_BLOCK_PLUGINS`` and
            ``REMOTE_STORE_TRANSFER_DISABLE_PLUGIN_AUTOLOAD`` (the config file
            is applied above, by :func:`remote_store_transfer.runtime.build_from_environment`).

    Raises:
        PluginLoadError: An entry-point plugin failed to load.
        ValueError: A built-in that cannot be blocked was named in *blocked*.
    """
    pm = TransferPluginManager()
    for name in [*blocked, *(_env_blocked() if use_env else ())]:
        pm.set_blocked(name)
    version = own_version()
    for name, plugin in BUILTIN_PLUGINS:
        pm.register(plugin, name=name, distribution=DISTRIBUTION, version=version, builtin=True)
    for plugin in plugins:
        pm.register(plugin)
    if entry_points and not (use_env and _autoload_disabled()):
        pm.load_entry_points()
    return pm
