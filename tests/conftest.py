"""Shared fixtures: stores, the spec marker, and a clean process-wide plugin manager per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

import remote_store_transfer
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
