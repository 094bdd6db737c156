"""A real ``distributed.LocalCluster`` (two worker processes), the shared moto server, and a pip-style plugin install.

Worker processes are *spawned*: they start with this process's environment
(``os.environ``) and ``sys.path`` as they are when the cluster starts, so
everything they must see is put there first:

* ``PYTHONPATH`` and ``sys.path``: a temp "site-packages" holding the
  ``rst-dask-probe`` distribution (a module plus a ``*.dist-info`` with an
  ``entry_points.txt``, as pip leaves it), and ``tests/dask`` (the helper
  module whose plugin objects travel pickled);
* ``RST_DASK_PROBE_DIR``: where the probe plugin writes;
* ``RST_TEST_S3_KEY`` / ``RST_TEST_S3_SECRET``: the S3 credentials that the
  workers resolve from their own environment for ``registry_store()`` stores.

Once the cluster is up, ``sys.path`` and ``PYTHONPATH`` are restored: the
rest of the suite must not see the probe plugin. Each test here puts them
back for its own duration (a worker that dies is restarted by its nanny with
the caller's ``sys.path`` of that moment). The variables are restored when
the session ends.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from rst_dask_kit import (
    HERE,
    PROBE_DIST,
    PROBE_ENTRY_POINT,
    PROBE_ENV,
    PROBE_MODULE,
    PROBE_SOURCE,
    S3_KEY_ENV,
    S3_SECRET_ENV,
    install_distribution,
)

from harness import MotoServer

BUCKET = "dask-trees"
DASK_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the cluster's tests last.

    The cluster is started once per session and lives until the session
    ends. Its scheduler runs in this process, with threads that allocate memory
    and open files (``/proc/PID/stat``) all the time: tests that measure this
    process's peak memory (tracemalloc) or count its open files would see
    them. With the cluster's tests last, it starts only after those ran.
    """
    ours = [item for item in items if DASK_DIR in Path(str(item.path)).resolve().parents]
    if ours:
        others = [item for item in items if item not in ours]
        items[:] = others + ours


@pytest.fixture(scope="session")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as site-packages with the ``rst-dask-probe`` plugin distribution installed."""
    site = tmp_path_factory.mktemp("site-packages")
    install_distribution(site, PROBE_DIST, "0.1.0", PROBE_ENTRY_POINT, PROBE_MODULE, PROBE_SOURCE)
    return site


@pytest.fixture(scope="session")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe-events")


@pytest.fixture(scope="session")
def s3_credentials() -> dict[str, str]:
    """Fresh, recognizable credential values (moto accepts any): found in a payload only if they leaked."""
    return {
        S3_KEY_ENV: f"AKIADASK{secrets.token_hex(6).upper()}",
        S3_SECRET_ENV: f"dask-secret-{secrets.token_hex(16)}",
    }


@pytest.fixture(scope="session")
def dask_env(probe_dir: Path, s3_credentials: dict[str, str]) -> Iterator[dict[str, str]]:
    """The variables the workers need, set in ``os.environ`` for the session (restored at its end)."""
    values = {PROBE_ENV: str(probe_dir), **s3_credentials}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _with_paths(probe_site: Path) -> tuple[list[str], str]:
    """(``sys.path``, ``PYTHONPATH``) with the probe's site-packages and ``tests/dask`` in front."""
    front = [str(probe_site), str(HERE)]
    current = os.environ.get("PYTHONPATH", "")
    return [*front, *sys.path], os.pathsep.join([*front, *([current] if current else [])])


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory, probe_site: Path, dask_env: dict[str, str]) -> Iterator[Any]:
    """``LocalCluster(n_workers=2, threads_per_worker=2, processes=True)``, started once for the session."""
    from distributed import LocalCluster

    saved_path, saved_pythonpath = list(sys.path), os.environ.get("PYTHONPATH")
    sys.path[:], os.environ["PYTHONPATH"] = _with_paths(probe_site)
    try:
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            local_directory=str(tmp_path_factory.mktemp("dask-scratch")),
            silence_logs=logging.ERROR,
        )
    finally:
        sys.path[:] = saved_path
        if saved_pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_pythonpath
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    from distributed import Client

    with Client(dask_cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture(autouse=True)
def _probe_installed(probe_site: Path, dask_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """For this test: the probe installed in this process too (as pip would), and on ``PYTHONPATH``.

    Also what a worker restarted during the test (after a kill) or a spawned
    ``ProcessPoolExecutor`` worker inherits.
    """
    path, pythonpath = _with_paths(probe_site)
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    for entry in reversed(path[:2]):
        monkeypatch.syspath_prepend(entry)


@pytest.fixture
def worker_pids(dask_client: Any) -> set[int]:
    """The pids of the cluster's two worker processes (both up)."""
    dask_client.wait_for_workers(2, timeout=60)
    pids = set(dask_client.run(os.getpid).values())
    assert len(pids) == 2
    return pids


# region: S3 (the session's moto server, shared with the other tests)


@pytest.fixture(scope="session")
def dask_moto(moto_server: MotoServer) -> MotoServer:
    """The session's moto server (``tests/conftest.py``), with the bucket ``dask-trees``."""
    moto_server.make_bucket(BUCKET)
    return moto_server


@pytest.fixture
def s3_config(dask_moto: MotoServer) -> dict[str, Any]:
    """A remote-store registry config for an S3 store (its own root), credentials as ``${VAR}`` placeholders."""
    return {
        "backends": {
            "moto": {
                "type": "s3",
                "options": {
                    "bucket": BUCKET,
                    "endpoint_url": dask_moto.endpoint,
                    "region_name": dask_moto.region,
                    "key": "${" + S3_KEY_ENV + "}",
                    "secret": "${" + S3_SECRET_ENV + "}",
                },
            }
        },
        "stores": {"archive": {"backend": "moto", "root_path": f"t-{uuid.uuid4().hex[:12]}"}},
    }


# endregion


@pytest.fixture(scope="module")
def pool(dask_env: dict[str, str]) -> Iterator[ProcessPoolExecutor]:
    """Two spawned processes; they start at the first task, with the session's S3 credential variables set."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        yield executor


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[functools.partial[Any]]:
    """Every call the runner hands to the executor (what is serialized and sent to a worker), recorded."""
    from remote_store_transfer.tree.runner import Runner

    calls: list[functools.partial[Any]] = []
    submit = Runner._submit

    def spy(self: Runner, executor: Any, task: Any) -> Any:
        calls.append(task.call)
        return submit(self, executor, task)

    monkeypatch.setattr(Runner, "_submit", spy)
    return calls
