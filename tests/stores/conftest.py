"""Fixtures for the store tests: real S3 (moto) and SFTP (OpenSSH) servers on 127.0.0.1, and stores over them.

Both servers are real processes, the session's ``moto_server`` and ``ssh_server``
(``tests/conftest.py``, over ``harness``): ``python -m moto.server`` and
``/usr/sbin/sshd -D`` with throwaway host and user keys, reached only through
remote-store's public ``S3Backend`` / ``SFTPBackend`` constructors.

A server that cannot start fails the tests (never a skip): ``.ci/run`` installs
``openssh-server``, the ``test`` extra installs ``moto[server]``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend
from storekit import (
    Faults,
    FaultyLocalBackend,
    FaultyMemoryBackend,
    FaultyS3Backend,
    FaultySFTPBackend,
)

from harness import MotoServer, SshServer

# region: fixtures


@pytest.fixture(scope="session")
def session_stores(moto_server: MotoServer, ssh_server: SshServer) -> Iterator[dict[str, list[Store]]]:
    """Two long-lived S3 stores and two SFTP stores (one connection each), closed at the end."""
    stores = {
        "s3": [moto_server.store("matrix-a"), moto_server.store("matrix-b")],
        "sftp": [ssh_server.store(), ssh_server.store()],
    }
    try:
        yield stores
    finally:
        for pair in stores.values():
            for store in pair:
                store.close()


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Store]:
    """make_store(kind, role=0) -> a Store of that kind, scoped to a folder unique to this test.

    Memory and local stores are new per test; S3 and SFTP stores are scoped
    children of the session's long-lived stores (*role* 0 or 1 picks which).
    """

    def make(kind: str, role: int = 0) -> Store:
        if kind == "memory":
            return Store(backend=MemoryBackend())
        if kind == "local":
            root = tmp_path / f"local-store-{role}"
            root.mkdir(exist_ok=True)
            return Store(backend=LocalBackend(root=str(root)))
        stores: dict[str, list[Store]] = request.getfixturevalue("session_stores")
        return stores[kind][role].child(f"t-{uuid.uuid4().hex[:12]}")

    return make


@pytest.fixture(scope="session")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], tuple[Path, str]]:
    """payload(size) -> (path of a local file of random bytes, its sha256); each size made once per session."""
    folder = tmp_path_factory.mktemp("payloads")
    made: dict[int, tuple[Path, str]] = {}

    def payload(size: int) -> tuple[Path, str]:
        if size not in made:
            data = os.urandom(size)
            path = folder / f"payload-{size}.bin"
            path.write_bytes(data)
            made[size] = (path, hashlib.sha256(data).hexdigest())
        return made[size]

    return payload


# endregion


@dataclass
class FaultyStore:
    """A store of one kind over a :class:`storekit.Faults` backend, and where its files can be inspected."""

    kind: str
    store: Store
    backend: Faults
    files: Path | None
    """The local folder that holds the store's files (memory and S3: ``None``)."""
    bucket: str | None = None


@pytest.fixture
def faulty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., FaultyStore]]:
    """faulty_store(kind) -> a FaultyStore on a new backend, its root unique to this test; closed afterwards."""
    made: list[Store] = []

    def make(kind: str, **options: Any) -> FaultyStore:
        prefix = f"t-{uuid.uuid4().hex[:12]}"
        if kind == "memory":
            backend: Faults = FaultyMemoryBackend()
            result = FaultyStore(kind, Store(backend=backend), backend, None)
        elif kind == "local":
            root = tmp_path / f"faulty-local-{len(made)}"
            root.mkdir()
            backend = FaultyLocalBackend(root=str(root))
            result = FaultyStore(kind, Store(backend=backend), backend, root)
        elif kind == "s3":
            moto: MotoServer = request.getfixturevalue("moto_server")
            backend = moto.backend("faults", backend_class=FaultyS3Backend, **options)
            result = FaultyStore(kind, Store(backend=backend).child(prefix), backend, None, bucket="faults")
        else:
            sshd: SshServer = request.getfixturevalue("ssh_server")
            backend = sshd.backend(backend_class=FaultySFTPBackend, **options)
            result = FaultyStore(kind, Store(backend=backend).child(prefix), backend, sshd.root / prefix)
        made.append(Store(backend=backend))
        return result

    yield make
    for store in made:
        store.close()
