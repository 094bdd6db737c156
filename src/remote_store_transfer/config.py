"""The built-in plugins' configuration: parse it, check it, apply it to one plugin manager.

The built-in plugins ``audit``, ``integrity``, ``policy``, ``logging`` and
``otel`` ship in the package and are off until enabled. This module reads a
TOML file or a dict into a :class:`TransferConfig` and applies it, or one
plugin's options, to a given :class:`~remote_store_transfer.plugin.manager.TransferPluginManager`
(:func:`apply`, :func:`enable`, :func:`disable`, :func:`apply_env_config`).

The public calls ``configure()``, ``enable_plugin()`` and ``disable_plugin()``,
which default to the process-wide manager, live one layer up in
:mod:`remote_store_transfer.runtime`; this module never imports it.

A bad configuration raises :class:`~remote_store_transfer.ConfigError` naming
the file, the key and the problem. The file format is described in
``docs/plugins/index.md``::

    [plugins.audit]
    path = "/var/log/remote-store-transfer/audit.jsonl"

    [plugins.integrity]
    algorithm = "sha256"
    verify = true

    [plugins.policy]
    max_size = 10_000_000_000
    read_only = ["s3:prod-archive/*"]
    [plugins.policy.upload]
    allow = ["reports/*"]
"""

from __future__ import annotations

import importlib
import inspect
import os
import tomllib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from remote_store import Registry, RegistryConfig, Secret, resolve_env

from remote_store_transfer.errors import ConfigError
from remote_store_transfer.plugin import PLUGIN_NAMES
from remote_store_transfer.plugin.manager import DISTRIBUTION, own_version

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from remote_store import Store

    from remote_store_transfer.plugin.manager import TransferPluginManager

__all__ = [
    "CONFIG_ENV",
    "PLUGIN_NAMES",
    "PluginSettings",
    "TransferConfig",
    "apply",
    "apply_env_config",
    "disable",
    "enable",
    "load_config",
    "make",
    "parse_config",
    "read",
]

CONFIG_ENV = "REMOTE_STORE_TRANSFER_CONFIG"
"""Environment variable naming the TOML file applied to the process-wide manager."""

_CLASSES = {
    "audit": "remote_store_transfer.audit:AuditPlugin",
    "integrity": "remote_store_transfer.plugin.integrity:IntegrityPlugin",
    "policy": "remote_store_transfer.plugin.policy:PolicyPlugin",
    "logging": "remote_store_transfer.plugin.logging:LoggingPlugin",
    "otel": "remote_store_transfer.plugin.otel:OtelPlugin",
}
_UNKNOWN = f"unknown plugin; the built-in plugins are {', '.join(PLUGIN_NAMES)}"

# Registration order. pluggy puts a trylast implementation registered later after the trylast
# ones before it, so among the trylast post_transfer implementations logging runs first, then
# otel, then audit last: audit writes the final outcome. policy (tryfirst pre_transfer) and
# integrity (tryfirst post_transfer) run before the plain implementations of their hooks.
_ORDER = ("logging", "otel", "audit", "integrity", "policy")

_TOP_LEVEL = ("plugins", "backends", "stores")

# The TOML keys of each plugin: key -> (expected type name, check). "enabled" is common to all.
_STR, _BOOL, _INT, _STRS = "a string", "a boolean", "an integer", "a list of strings"
_RULES = "a table with 'allow' and/or 'deny' lists of strings"
_LEVEL = "a level name or number"
_SCHEMA: dict[str, dict[str, str]] = {
    "audit": {
        "path": _STR,
        "store": _STR,
        "prefix": _STR,
        "actor": _STR,
        "host": _STR,
        "key_env": _STR,
        "on_failure": _STR,
        "anchor_path": _STR,
        "anchor_store": _STR,
        "anchor_name": _STR,
    },
    "integrity": {"algorithm": _STR, "verify": _BOOL, "trust_backend_digest": _BOOL, "check_size": _BOOL},
    "policy": {
        "max_size": _INT,
        "check_remote_size": _BOOL,
        "read_only": _STRS,
        "deny_overwrite": _BOOL,
        "upload": _RULES,
        "download": _RULES,
        "transfer": _RULES,
        "physical": _BOOL,
        "case_insensitive": _BOOL,
    },
    "logging": {"logger": _STR, "level": _LEVEL, "chunks": _BOOL},
    "otel": {},
}
_CHECKS: dict[str, Callable[[Any], bool]] = {
    _STR: lambda v: isinstance(v, str),
    _BOOL: lambda v: isinstance(v, bool),
    _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    _STRS: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    _RULES: lambda v: (
        isinstance(v, dict)
        and set(v) <= {"allow", "deny"}
        and all(isinstance(p, list) and all(isinstance(i, str) for i in p) for p in v.values())
    ),
    _LEVEL: lambda v: isinstance(v, str | int) and not isinstance(v, bool),
}


@dataclass(frozen=True)
class PluginSettings:
    """One ``[plugins.<name>]`` table, validated.

    Attributes:
        name: The plugin's name.
        enabled: ``enabled`` (default ``true`` when the table is present).
        options: The constructor keyword arguments made from the table.
    """

    name: str
    enabled: bool
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferConfig:
    """A validated plugin configuration (from :func:`load_config` or :func:`parse_config`).

    Attributes:
        plugins: The settings of each plugin named in the configuration.
        file: The file it came from, or ``None``.
    """

    plugins: tuple[PluginSettings, ...] = ()
    file: str | None = None


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def load_config(path: str | os.PathLike[str]) -> TransferConfig:
    """Read and validate a TOML config file.

    ``${VAR}`` and ``${VAR:-default}`` in strings are replaced by environment
    variables (remote-store's ``resolve_env``; ``$${`` is a literal ``${``).

    Raises:
        ConfigError: The file cannot be read, is not TOML, or is not a valid configuration.
    """
    file = os.fspath(path)
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror or exc}", file=file) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=file) from exc
    return parse_config(data, file=file)


def parse_config(data: Mapping[str, Any], *, file: str | None = None) -> TransferConfig:
    """Validate a config already parsed into a dict (same shape as the TOML file).

    Stores named by ``plugins.audit.store`` are built from the ``[backends]``
    and ``[stores]`` tables (remote-store's ``RegistryConfig`` format); the
    credentials there are ``Secret`` s and are masked in audit records, log
    records and spans.

    Raises:
        ConfigError: Naming *file*, the key and the problem.
    """
    try:
        data = resolve_env(dict(data))
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]) if exc.args else str(exc), file=file) from exc
    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"unknown top-level key; expected one of {', '.join(_TOP_LEVEL)}", file=file, key=key)
    plugins = data.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ConfigError(f"must be a table, got {_type_name(plugins)}", file=file, key="plugins")
    stores = _Stores(data, file)
    settings = [_settings(name, table, stores, file) for name, table in plugins.items()]
    if stores.secrets:  # every plugin that writes text masks the credentials of the configured stores
        settings = [
            PluginSettings(s.name, s.enabled, {**s.options, "redact": stores.secrets})
            if s.name in ("audit", "logging", "otel")
            else s
            for s in settings
        ]
    return TransferConfig(tuple(settings), file)


class _Stores:
    """The ``[backends]`` / ``[stores]`` tables: their secrets at once, their stores built on first use."""

    def __init__(self, data: Mapping[str, Any], file: str | None) -> None:
        self._file = file
        self._registry: Registry | None = None
        tables = {"backends": data.get("backends", {}), "stores": data.get("stores", {})}
        try:
            self._config = RegistryConfig.from_dict(tables)
            self._config.validate()
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigError(f"invalid remote-store configuration: {exc}", file=file, key="backends") from exc
        self.secrets = tuple(
            v for backend in self._config.backends.values() for v in backend.options.values() if isinstance(v, Secret)
        )

    def get(self, key: str, name: str) -> Store:
        try:
            if self._registry is None:
                self._registry = Registry(self._config)
            return self._registry.get_store(name)
        except KeyError as exc:
            raise ConfigError(f"no store named {name!r} in [stores]", file=self._file, key=key) from exc
        except (TypeError, ValueError, ImportError) as exc:
            raise ConfigError(f"cannot build store {name!r}: {exc}", file=self._file, key=key) from exc


def _settings(name: str, table: object, stores: _Stores, file: str | None) -> PluginSettings:
    """Validate the ``[plugins.<name>]`` table; turn it into constructor options."""
    prefix = f"plugins.{name}"
    if name not in _SCHEMA:
        raise ConfigError(_UNKNOWN, file=file, key=prefix)
    if not isinstance(table, dict):
        raise ConfigError(f"must be a table, got {_type_name(table)}", file=file, key=prefix)
    schema = {"enabled": _BOOL, **_SCHEMA[name]}
    for key, value in table.items():
        expected = schema.get(key)
        if expected is None:
            raise ConfigError(
                f"unknown key; the keys of {name!r} are {', '.join(schema)}", file=file, key=f"{prefix}.{key}"
            )
        if not _CHECKS[expected](value):
            problem = f"must be {expected}, got {_type_name(value)}: {value!r}"
            raise ConfigError(problem, file=file, key=f"{prefix}.{key}")
    options = {k: v for k, v in table.items() if k != "enabled"}
    enabled = table.get("enabled", True)
    if name == "audit" and enabled:
        for option in ("store", "anchor_store"):
            if option in options:
                options[option] = stores.get(f"{prefix}.{option}", options[option])
        if "key_env" in options:
            variable = options.pop("key_env")
            if not os.environ.get(variable):
                problem = f"environment variable {variable!r} is not set or empty"
                raise ConfigError(problem, file=file, key=f"{prefix}.key_env")
            options["key"] = Secret(os.environ[variable])
    return PluginSettings(name, enabled, options)


def _plugin_class(name: str, *, file: str | None) -> type:
    if name not in _CLASSES:
        raise ConfigError(_UNKNOWN, file=file, key=f"plugins.{name}")
    module_name, _, class_name = _CLASSES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ' (install the extra from a clone: pip install ".[otel]")' if name == "otel" else ""
        raise ConfigError(f"cannot import the plugin: {exc}{hint}", file=file, key=f"plugins.{name}") from exc
    cls: type = getattr(module, class_name)
    return cls


def _make(name: str, options: Mapping[str, Any], *, file: str | None) -> object:
    """Build plugin *name* with *options*; every problem becomes a ``ConfigError``."""
    cls = _plugin_class(name, file=file)
    accepted = set(inspect.signature(cls).parameters)
    for key in options:
        if key not in accepted:
            raise ConfigError(
                f"unknown option; the options of {name!r} are {', '.join(sorted(accepted))}",
                file=file,
                key=f"plugins.{name}.{key}",
            )
    try:
        return cls(**options)
    except (TypeError, ValueError, OSError) as exc:
        raise ConfigError(str(exc), file=file, key=f"plugins.{name}") from exc


def _install(pm: TransferPluginManager, name: str, plugin: object | None, *, file: str | None = None) -> None:
    """Register *plugin* as built-in plugin *name* (replacing one already there), or only remove it (``None``).

    The built-in plugins are re-registered in :data:`_ORDER` so their hooks
    run in a fixed order whatever order they were enabled in.
    """
    if plugin is not None and pm.is_blocked(name):
        raise ConfigError(
            "the plugin is blocked (REMOTE_STORE_TRANSFER_BLOCK_PLUGINS or block_plugin()); unblock it to enable it",
            file=file,
            key=f"plugins.{name}",
        )
    infos = {info.name: info for info in pm.list_plugins() if not info.blocked}
    if name in infos and not infos[name].builtin:
        raise ConfigError(
            f"another plugin is registered under this name (distribution {infos[name].distribution}); "
            "block or unregister it first",
            file=file,
            key=f"plugins.{name}",
        )
    ours = {n: pm.get_plugin(n) for n in _ORDER if n in infos and infos[n].builtin}
    for n in ours:
        pm.unregister(name=n)
    if plugin is None:
        ours.pop(name, None)
    else:
        ours[name] = plugin
    version = own_version()
    for n in _ORDER:
        if n in ours:
            pm.register(ours[n], name=n, distribution=DISTRIBUTION, version=version, builtin=True)


def _record(pm: TransferPluginManager, name: str, options: Mapping[str, Any] | None) -> None:
    """Remember a setting made through the API, for worker processes (see ``TransferPluginManager.settings``)."""
    pm.settings.pop(name, None)  # the latest setting of a plugin comes last
    pm.settings[name] = None if options is None else dict(options)


def make(name: str, options: Mapping[str, Any]) -> object:
    """Build built-in plugin *name* with *options*, without registering it anywhere.

    Raises:
        ConfigError: Unknown plugin or option, invalid value.
    """
    return _make(name, options, file=None)


def enable(pm: TransferPluginManager, name: str, options: Mapping[str, Any], *, plugin: object = None) -> object:
    """Enable built-in plugin *name* in *pm* with *options* (its constructor's keyword arguments).

    Replaces the plugin of that name if it is already enabled, and records the
    setting for worker processes (``TransferPluginManager.settings``).

    Args:
        pm: The plugin manager.
        name: The built-in plugin's name.
        options: Its options.
        plugin: The plugin already built from *options* by :func:`make`
            (default: build it here).

    Returns:
        The plugin instance registered.

    Raises:
        ConfigError: Unknown plugin or option, invalid value, blocked name.
    """
    if plugin is None:
        plugin = _make(name, options, file=None)
    _install(pm, name, plugin)
    _record(pm, name, options)
    return plugin


def disable(pm: TransferPluginManager, name: str) -> bool:
    """Disable built-in plugin *name* in *pm*; ``True`` if it was enabled.

    Raises:
        ConfigError: *name* is not a built-in plugin that can be enabled.
    """
    if name not in _CLASSES:
        raise ConfigError(_UNKNOWN, key=f"plugins.{name}")
    enabled = any(i.name == name and i.builtin and not i.blocked for i in pm.list_plugins())
    if enabled:
        _install(pm, name, None)
    _record(pm, name, None)
    return enabled


def read(config: TransferConfig | Mapping[str, Any] | str | os.PathLike[str] | None) -> TransferConfig | None:
    """*config* as a checked :class:`TransferConfig` (``None``: the file named by ``REMOTE_STORE_TRANSFER_CONFIG``).

    Returns ``None`` when *config* is ``None`` and the variable is unset.

    Raises:
        ConfigError: Naming the file, key and problem.
    """
    if config is None:
        path = os.environ.get(CONFIG_ENV, "").strip()
        if not path:
            return None
        config = path
    if isinstance(config, str | os.PathLike):
        return load_config(config)
    if isinstance(config, TransferConfig):
        return config
    return parse_config(config)


def apply(
    pm: TransferPluginManager,
    config: TransferConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
    *,
    record: bool = True,
) -> list[str]:
    """Apply *config* to *pm*: enable the plugins it enables, disable those it disables.

    Plugins it does not name are left as they are. Everything is validated
    (and every plugin built) before anything changes.

    Args:
        pm: The plugin manager to configure.
        config: A TOML file path, a dict of the same shape, a
            :class:`TransferConfig`, or ``None`` for the file named by
            ``REMOTE_STORE_TRANSFER_CONFIG`` (nothing happens when it is unset).
        record: Remember the settings so that trees run in worker processes
            apply them there too (``False`` for the environment's own config
            file, which every worker process reads itself).

    Returns:
        The names of the plugins it enabled.

    Raises:
        ConfigError: Naming the file, key and problem.
    """
    config = read(config)
    if config is None:
        return []
    built = {s.name: _make(s.name, s.options, file=config.file) for s in config.plugins if s.enabled}
    for s in config.plugins:
        _install(pm, s.name, built.get(s.name), file=config.file)
        if record:
            _record(pm, s.name, dict(s.options) if s.enabled else None)
    return list(built)


def apply_env_config(pm: TransferPluginManager) -> None:
    """Apply the file named by ``REMOTE_STORE_TRANSFER_CONFIG`` (if set) to *pm*.

    Called when the process-wide manager is built.

    Raises:
        ConfigError: The file is unreadable or invalid.
    """
    apply(pm, None, record=False)
