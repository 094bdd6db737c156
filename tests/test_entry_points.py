"""Third-party plugins installed for real: a module plus a ``*.dist-info`` with ``entry_points.txt``.

Each scenario runs in a subprocess whose ``sys.path`` holds the fake
installation, exactly as pip would leave it in site-packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN_MODULE = """
import json, os
from remote_store_transfer import hookimpl

def _log(event):
    with open(os.environ["ACME_EVENTS"], "a") as fh:
        fh.write(json.dumps(event) + "\\n")

@hookimpl
def pre_transfer(context):
    _log(["pre", context.operation, context.size])

@hookimpl
def on_chunk(context, nbytes):
    _log(["chunk", nbytes])

@hookimpl
def post_transfer(context, error):
    _log(["post", context.bytes_transferred, None if error is None else type(error).__name__])
"""

SCRIPT = """
import json, os, sys, tempfile
from remote_store import Store
from remote_store.backends import MemoryBackend
import remote_store_transfer as rst

for name in sys.argv[1:]:
    rst.block_plugin(name)
path = os.path.join(tempfile.mkdtemp(), "a.bin")
with open(path, "wb") as fh:
    fh.write(b"x" * 100000)
progress = []
rst.upload(Store(backend=MemoryBackend()), path, "a.bin", on_progress=progress.append)
print(json.dumps({
    "progress": sum(progress),
    "plugins": [[p.name, p.distribution, p.version, p.builtin, p.blocked] for p in rst.list_plugins()],
}))
"""


def install(site: Path, dist: str, version: str, ep_name: str, module: str, source: str) -> None:
    """Lay out a distribution in *site* the way pip installs it."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[remote_store_transfer]\n{ep_name} = {module}\n")
    (info / "RECORD").write_text("")


def run(site: Path, tmp_path: Path, *blocked: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(site), "ACME_EVENTS": str(tmp_path / "events.jsonl"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *blocked], env=full_env, capture_output=True, text=True, timeout=60
    )


def events(tmp_path: Path) -> list[list[object]]:
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    site.mkdir()
    install(site, "acme-audit", "1.2.3", "acme", "acme_audit_plugin", PLUGIN_MODULE)
    return site


def test_installed_plugin_is_loaded_and_called(site, tmp_path):
    proc = run(site, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["progress"] == 100000
    assert ["acme", "acme-audit", "1.2.3", False, False] in out["plugins"]
    assert out["plugins"][0][:4] == ["progress", "remote-store-transfer", out["plugins"][0][2], True]
    got = events(tmp_path)
    assert got[0] == ["pre", "upload", 100000]
    assert got[-1] == ["post", 100000, None]
    assert sum(e[1] for e in got if e[0] == "chunk") == 100000


def test_autoload_can_be_disabled_and_builtins_stay(site, tmp_path):
    proc = run(site, tmp_path, env={"REMOTE_STORE_TRANSFER_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["progress"] == 100000  # the built-in progress plugin still works
    assert [p[0] for p in out["plugins"]] == ["progress"]
    assert events(tmp_path) == []


@pytest.mark.parametrize("how", ["env", "api"])
def test_a_named_plugin_can_be_blocked(site, tmp_path, how):
    proc = (
        run(site, tmp_path, env={"REMOTE_STORE_TRANSFER_BLOCK_PLUGINS": "other, acme"})
        if how == "env"
        else run(site, tmp_path, "acme")
    )
    assert proc.returncode == 0, proc.stderr
    plugins = json.loads(proc.stdout)["plugins"]
    assert ["acme", None, None, False, True] in plugins  # listed as blocked
    assert "acme" not in [p[0] for p in plugins if not p[4]]
    assert events(tmp_path) == []


def test_plugin_that_fails_to_import_names_itself_and_its_distribution(site, tmp_path):
    install(site, "broken-dist", "0.9", "broken", "broken_plugin", "import does_not_exist_anywhere\n")
    proc = run(site, tmp_path)
    assert proc.returncode != 0
    assert "PluginLoadError" in proc.stderr
    assert "'broken'" in proc.stderr and "broken-dist 0.9" in proc.stderr
    assert "does_not_exist_anywhere" in proc.stderr
    assert "REMOTE_STORE_TRANSFER_BLOCK_PLUGINS=broken" in proc.stderr
    # ...and blocking it by name lets the rest run.
    proc = run(site, tmp_path, env={"REMOTE_STORE_TRANSFER_BLOCK_PLUGINS": "broken"})
    assert proc.returncode == 0, proc.stderr
    assert events(tmp_path)[-1] == ["post", 100000, None]


def test_plugin_with_a_bad_hook_signature_is_a_clear_error(site, tmp_path):
    bad = """
    from remote_store_transfer import hookimpl

    @hookimpl
    def on_chunk(context, chunk_size):
        pass
    """
    install(site, "sloppy-plugin", "2.0", "sloppy", "sloppy_plugin", bad)
    proc = run(site, tmp_path)
    assert proc.returncode != 0
    assert "PluginLoadError" in proc.stderr
    assert "'sloppy'" in proc.stderr and "sloppy-plugin 2.0" in proc.stderr and "chunk_size" in proc.stderr


def test_isolated_manager_loads_entry_points_only_when_asked(site, tmp_path):
    script = """
import json
from remote_store_transfer import TransferManager
print(json.dumps([
    [p.name for p in TransferManager().list_plugins()],
    [p.name for p in TransferManager(entry_points=True).list_plugins()],
    [p.name for p in TransferManager(entry_points=True, blocked=["acme"]).list_plugins() if not p.blocked],
]))
"""
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [["progress"], ["progress", "acme"], ["progress"]]


def test_loaded_plugins_are_logged_with_distribution_and_version(site, tmp_path):
    script = """
import logging
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
import remote_store_transfer
remote_store_transfer.plugin_manager()
"""
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "remote_store_transfer loaded plugin acme from distribution acme-audit 1.2.3" in proc.stderr
