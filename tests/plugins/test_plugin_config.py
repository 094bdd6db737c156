"""Switching the built-in plugins on: the config file (env var), configure(), enable_plugin(), and bad configs."""

from __future__ import annotations

import json

import pytest
from remote_store import Store
from remote_store.backends import MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import ConfigError, TransferManager, configure, disable_plugin, enable_plugin
from remote_store_transfer.audit import AuditPlugin, verify_store
from remote_store_transfer.config import CONFIG_ENV, PLUGIN_NAMES, load_config

FULL = """
[plugins.audit]
path = "{log}"
actor = "batch-svc"

[plugins.integrity]
algorithm = "sha512"
verify = true

[plugins.policy]
max_size = 1_000_000
deny_overwrite = true
[plugins.policy.upload]
allow = ["reports/*"]

[plugins.logging]
level = "DEBUG"

[plugins.otel]
enabled = false
"""


def names(plugins) -> list[str]:
    return [p.name for p in plugins if not p.blocked]


def test_all_off_by_default():
    assert names(rst.list_plugins()) == ["progress"]
    assert set(PLUGIN_NAMES) == {"audit", "integrity", "policy", "logging", "otel"}


def test_env_config_file_is_applied_when_the_process_wide_manager_is_built(tmp_path, monkeypatch, make_file):
    log = tmp_path / "audit.jsonl"
    config = tmp_path / "transfer.toml"
    config.write_text(FULL.format(log=log))
    monkeypatch.setenv(CONFIG_ENV, str(config))
    rst.reset_plugin_manager()
    infos = {p.name: p for p in rst.list_plugins()}
    assert sorted(infos) == ["audit", "integrity", "logging", "policy", "progress"]
    assert all(p.builtin and p.distribution == "remote-store-transfer" for p in infos.values())
    store = Store(backend=MemoryBackend())
    rst.upload(store, make_file("f", 100), "reports/f")
    with pytest.raises(rst.TransferDenied):
        rst.upload(store, make_file("g", 100), "elsewhere/g")
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["actor"]["user"] == "batch-svc"
    assert first["digest"]["algorithm"] == "sha512" and first["digest"]["verified"] is True
    assert second["error"]["type"] == "TransferDenied"


def test_env_var_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIT_DIR", str(tmp_path / "logs"))
    config = tmp_path / "transfer.toml"
    config.write_text('[plugins.audit]\npath = "${AUDIT_DIR}/audit.jsonl"\nhost = "${HOST_LABEL:-unnamed}"\n')
    (settings,) = load_config(config).plugins
    assert settings.options == {"path": f"{tmp_path}/logs/audit.jsonl", "host": "unnamed"}


def test_audit_store_sink_from_the_config_file(tmp_path, monkeypatch, make_file):
    monkeypatch.setenv("AUDIT_KEY", "from-the-vault")
    config = tmp_path / "transfer.toml"
    config.write_text(
        """
[backends.archive]
type = "local"
options = { root = "%s" }

[stores.audit]
backend = "archive"
root_path = "transfers"

[plugins.audit]
store = "audit"
prefix = "log"
key_env = "AUDIT_KEY"
"""
        % (tmp_path / "archive")
    )
    (tmp_path / "archive").mkdir()
    assert configure(config) == ["audit"]
    rst.upload(Store(backend=MemoryBackend()), make_file("f", 10), "f")
    from remote_store.backends import LocalBackend

    archive = Store(backend=LocalBackend(root=str(tmp_path / "archive"))).child("transfers")
    assert verify_store(archive, "log", key="from-the-vault").records == 1
    assert not verify_store(archive, "log").ok  # written with the key


def test_configure_a_transfer_manager_only(tmp_path, make_file):
    manager = TransferManager()
    assert configure({"plugins": {"integrity": {}, "policy": {"max_size": 1}}}, manager=manager) == [
        "integrity",
        "policy",
    ]
    assert names(manager.list_plugins()) == ["progress", "integrity", "policy"]
    assert names(rst.list_plugins()) == ["progress"]
    with pytest.raises(rst.TransferDenied):
        manager.upload(Store(backend=MemoryBackend()), make_file("f", 10), "f")


def test_integrity_check_size_from_the_config():
    manager = TransferManager()
    configure({"plugins": {"integrity": {"check_size": False}}}, manager=manager)
    assert manager.plugin_manager.get_plugin("integrity").check_size is False


def test_configure_replaces_and_disables(tmp_path):
    enable_plugin("audit", path=tmp_path / "a.jsonl")
    enable_plugin("integrity")
    replaced = configure({"plugins": {"audit": {"path": str(tmp_path / "b.jsonl")}, "integrity": {"enabled": False}}})
    assert replaced == ["audit"]
    assert names(rst.list_plugins()) == ["progress", "audit"]
    plugin = rst.plugin_manager().get_plugin("audit")
    assert isinstance(plugin, AuditPlugin) and plugin.sink.path.endswith("b.jsonl")  # type: ignore[attr-defined]
    assert disable_plugin("audit") is True
    assert disable_plugin("audit") is False
    assert names(rst.list_plugins()) == ["progress"]


def test_configure_without_env_does_nothing():
    assert configure() == []


def test_fixed_hook_order_whatever_the_enable_order(tmp_path):
    for name in ("policy", "logging", "integrity", "audit"):
        enable_plugin(name, **({"path": tmp_path / "a.jsonl"} if name == "audit" else {}))
    assert names(rst.list_plugins()) == ["progress", "logging", "audit", "integrity", "policy"]
    post = [name for name, _, _ in rst.plugin_manager().dispatch.post]
    assert post == ["integrity", "logging", "audit"]  # integrity verifies first, audit records last


def test_enable_returns_the_instance_and_replaces():
    first = enable_plugin("integrity")
    second = enable_plugin("integrity", algorithm="md5")
    assert rst.plugin_manager().get_plugin("integrity") is second is not first


def test_blocked_plugin_cannot_be_enabled():
    rst.block_plugin("audit")
    with pytest.raises(ConfigError, match=r"plugins\.audit: the plugin is blocked"):
        enable_plugin("audit", path="x")


def test_a_foreign_plugin_with_the_same_name_is_not_replaced():
    class Impostor:
        @rst.hookimpl
        def post_transfer(self, context):
            pass

    manager = TransferManager([])
    manager.register(Impostor(), name="audit")
    with pytest.raises(ConfigError, match="another plugin is registered under this name"):
        enable_plugin("audit", manager=manager, path="x")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[plugins.nope]\n", "plugins.nope", "unknown plugin; the built-in plugins are audit, integrity"),
        ("[plugins.progress]\n", "plugins.progress", "unknown plugin"),
        ("[plugins.integrity]\nverify = 'yes'\n", "plugins.integrity.verify", "must be a boolean, got string: 'yes'"),
        ("[plugins.integrity]\ncheck_size = 1\n", "plugins.integrity.check_size", "must be a boolean, got integer: 1"),
        ("[plugins.policy]\nmax_size = 1.5\n", "plugins.policy.max_size", "must be an integer, got float: 1.5"),
        ("[plugins.policy]\nread_only = 's3:*'\n", "plugins.policy.read_only", "must be a list of strings"),
        ("[plugins.policy.upload]\nallow = [1]\n", "plugins.policy.upload", "'allow' and/or 'deny' lists of strings"),
        ("[plugins.audit]\npaht = 'x'\n", "plugins.audit.paht", "unknown key; the keys of 'audit' are enabled, path"),
        ("[plugins.audit]\nenabled = 1\npath = 'x'\n", "plugins.audit.enabled", "must be a boolean"),
        ("[plugins.audit]\nactor = 'x'\n", "plugins.audit", "give exactly one of path, store or sink"),
        ("[plugins.audit]\npath = 'x'\non_failure = 'ignore'\n", "plugins.audit", "on_failure must be"),
        ("[plugins.audit]\nstore = 'nowhere'\n", "plugins.audit.store", "no store named 'nowhere' in [stores]"),
        (
            "[plugins.audit]\npath = 'x'\nkey_env = 'NO_SUCH_VAR_X'\n",
            "plugins.audit.key_env",
            "'NO_SUCH_VAR_X' is not set",
        ),
        ("[plugins.integrity]\nalgorithm = 'crc'\n", "plugins.integrity", "unknown hash algorithm 'crc'"),
        ("[plugins.logging]\nlevel = 'LOUD'\n", "plugins.logging", "unknown log level 'LOUD'"),
        ("[plugin.audit]\n", "plugin", "unknown top-level key; expected one of plugins, backends, stores"),
        ("plugins = 3\n", "plugins", "must be a table, got integer"),
        ("[plugins]\naudit = 'on'\n", "plugins.audit", "must be a table, got string"),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path, monkeypatch, text, key, problem):
    config = tmp_path / "transfer.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        configure(config)
    error = caught.value
    assert (error.file, error.key) == (str(config), key)
    assert problem in error.problem
    assert str(error).startswith(f"{config}: {key}: ")
    # The same file named by the environment fails at start: the first transfer call.
    monkeypatch.setenv(CONFIG_ENV, str(config))
    rst.reset_plugin_manager()
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        rst.plugin_manager()
    # Nothing is half-applied, and once the file is fixed the next call builds the manager.
    config.write_text("")
    assert names(rst.list_plugins()) == ["progress"]


def test_unreadable_and_invalid_files(tmp_path, monkeypatch):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=rf"{missing}: cannot read the config file: No such file"):
        configure(missing)
    monkeypatch.setenv(CONFIG_ENV, str(missing))
    with pytest.raises(ConfigError, match="missing.toml"):
        rst.upload(Store(backend=MemoryBackend()), __file__, "x")
    broken = tmp_path / "broken.toml"
    broken.write_text("[plugins.audit\n")
    with pytest.raises(ConfigError, match=rf"{broken}: invalid TOML: .*line 1"):
        configure(broken)
    directory = tmp_path / "adir.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="adir.toml: cannot read"):
        configure(directory)


def test_api_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^plugin configuration: plugins\.nope: unknown plugin"):
        enable_plugin("nope")
    with pytest.raises(ConfigError, match=r"plugins\.integrity\.verfy: unknown option"):
        enable_plugin("integrity", verfy=True)
    with pytest.raises(ConfigError, match=r"plugins\.nope"):
        disable_plugin("nope")
