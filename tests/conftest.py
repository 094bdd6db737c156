"""Shared fixtures: stores, the spec marker, a clean process-wide plugin manager per test, and the real servers.

``moto_server`` and ``ssh_server`` are the session's one moto S3 server and one
OpenSSH server (``harness``), each its own process, started when a test first
asks for it and stopped whatever the outcome. Every test directory uses these;
a test that kills or restarts a server starts its own. A server that cannot
start fails the tests (never a skip).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

import remote_store_transfer
from harness import MotoServer, SshServer
from remote_store_transfer.config import CONFIG_ENV
from remote_store_transfer.plugin.manager import BLOCK_ENV, DISABLE_AUTOLOAD_ENV


@pytest.fixture(autouse=True)
def _fresh_global_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts and ends with a new process-wide manager and no plugin env vars."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    remote_store_transfer.reset_plugin_manager()
    yield
    remote_store_transfer.reset_plugin_manager()


@pytest.fixture
def memory_store() -> Store:
    return Store(backend=MemoryBackend())


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    root = tmp_path / "local-store"
    root.mkdir()
    return Store(backend=LocalBackend(root=str(root)))


@pytest.fixture
def make_file(tmp_path: Path):
    """make_file(name, size_or_bytes) -> Path of a real local file with random (or given) content."""

    def make(name: str, content: int | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(content) if isinstance(content, int) else content)
        return path

    return make


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """The session's moto S3 server (``python -m moto.server``); credentials unchecked unless a test asks."""
    with MotoServer(tmp_path_factory.mktemp("moto")).running() as server:
        yield server


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """The session's OpenSSH server (key auth, ``internal-sftp`` rooted at ``ssh_server.root``)."""
    with SshServer(tmp_path_factory.mktemp("sshd")).running() as server:
        yield server
