"""Fixtures for the built-in plugins: no config file from the environment, a corrupting backend."""

from __future__ import annotations

from typing import Any

import pytest
from remote_store import Store, WriteResult
from remote_store.backends import MemoryBackend

from remote_store_transfer import TransferManager
from remote_store_transfer.config import CONFIG_ENV


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)


@pytest.fixture
def manager() -> TransferManager:
    """An isolated manager: plugins are enabled into it with ``enable_plugin(..., manager=manager)``."""
    return TransferManager()


class CorruptingBackend(MemoryBackend):
    """A real MemoryBackend that flips one bit of what it is asked to write: a disk or network fault."""

    def write(self, path: str, content: Any, *, overwrite: bool = False, metadata: Any = None) -> WriteResult:
        data = bytearray(content if isinstance(content, bytes | bytearray) else content.read())
        if data:
            data[len(data) // 2] ^= 0x01
        return super().write(path, bytes(data), overwrite=overwrite, metadata=metadata)


@pytest.fixture
def corrupting_store() -> Store:
    return Store(backend=CorruptingBackend())
