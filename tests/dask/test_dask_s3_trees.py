"""Trees between local folders and S3 (a real moto server) on a real Dask cluster, with a ``registry_store``.

The store's config holds ``${RST_TEST_S3_KEY}``-style placeholders: the
workers resolve them from their own environment, and the tasks sent to them
never hold the credential values.
"""

from __future__ import annotations

import copy
import functools
import pickle
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, S3Backend
from rst_dask_kit import S3_KEY_ENV, S3_SECRET_ENV, local_tree, make_tree, store_tree

import remote_store_transfer as rst
from remote_store_transfer.audit import verify_store
from remote_store_transfer.batch import Batch
from remote_store_transfer.context import Endpoint
from remote_store_transfer.tree.engine import _Tree
from remote_store_transfer.tree.options import TreeOptions
from remote_store_transfer.tree.runner import Runner
from remote_store_transfer.tree.worker import BatchSpec, run_delete, run_file


def _assert_no_secret(payload: bytes, credentials: dict[str, str], what: str = "the serialized task") -> None:
    leaked = [name for name, value in credentials.items() if value.encode() in payload]
    assert not leaked, f"the value of {', '.join(leaked)} is in {what}"


def _assert_task_has_no_secret(call: functools.partial[Any], credentials: dict[str, str]) -> None:
    """No credential in the task as pickle and cloudpickle (Dask) serialize it; else name the part that holds it."""
    spec = call.args[0]
    assert isinstance(spec, BatchSpec)
    _assert_no_secret(pickle.dumps(spec.src), credentials, "BatchSpec.src")
    _assert_no_secret(pickle.dumps(spec.dst), credentials, "BatchSpec.dst")
    _assert_no_secret(spec.plugins.payload, credentials, "BatchSpec.plugins.payload (the plugin settings)")
    _assert_no_secret(pickle.dumps(call), credentials)
    _assert_no_secret(cloudpickle.dumps(call), credentials, "the task as Dask serializes it")


def test_upload_and_download_trees_through_s3_on_the_cluster(
    dask_client, s3_config, s3_credentials, submitted, tmp_path
):
    """local -> S3 -> local on the workers: every file's bytes arrive, both results complete, no secret travels."""
    files = make_tree(tmp_path / "src", 14, big=1)  # one file of several chunks
    s3 = rst.registry_store(s3_config, "archive")

    up = rst.upload_tree(s3, tmp_path / "src", "tree", executor=dask_client, atomic=True)

    assert up.ok, up.failed
    assert sorted(up.transferred) == sorted(files)
    assert up.skipped == []
    assert up.bytes_transferred == sum(map(len, files.values()))
    assert store_tree(s3, "tree") == files

    down = rst.download_tree(s3, "tree", tmp_path / "out", executor=dask_client, atomic=True)

    assert down.ok, down.failed
    assert sorted(down.transferred) == sorted(files)
    assert down.bytes_transferred == up.bytes_transferred
    assert local_tree(tmp_path / "out") == files  # hidden files included: no temp file left

    # What went to the workers: one run_file call per file, each with the unresolved config, never a secret.
    assert len(submitted) == 2 * len(files)
    specs = list({id(call.args[0]): call.args[0] for call in submitted}.values())
    assert {call.func for call in submitted} == {run_file}
    assert len(specs) == 2  # one BatchSpec per tree, shared by its files
    for spec in specs:
        assert isinstance(spec, BatchSpec)
        remote = spec.dst if spec.operation == "upload_tree" else spec.src
        assert remote is not None
        assert remote.payload is None  # not the pickled store...
        assert remote.config is not None  # ...but its registry config, placeholders unresolved
        options = remote.config["backends"]["moto"]["options"]
        assert options["key"] == "${" + S3_KEY_ENV + "}"
        assert options["secret"] == "${" + S3_SECRET_ENV + "}"
    for call in submitted:
        _assert_task_has_no_secret(call, s3_credentials)


def test_a_delete_tree_on_the_cluster_deletes_through_the_registry_store(dask_client, s3_config, submitted, tmp_path):
    """``delete=True``: the deletions run on the workers too (``run_delete``), through the worker-built store."""
    files = make_tree(tmp_path / "src", 5)
    s3 = rst.registry_store(s3_config, "archive")
    s3.write("tree/stale.bin", b"not in the source")

    result = rst.upload_tree(s3, tmp_path / "src", "tree", executor=dask_client, delete=True, max_delete=None)

    assert result.ok, result.failed
    assert result.deleted == ["stale.bin"]
    assert store_tree(s3, "tree") == files
    assert {call.func for call in submitted} == {run_file, run_delete}


def _shipped_spec(store: Store, src: Path, executor: Any) -> BatchSpec:
    """The ``BatchSpec`` that ``run_tree`` would send to the workers for ``upload_tree(store, src, "tree")``.

    Built as ``run_tree`` builds it: options, batch, runner, ``_Tree`` and ``_Tree.ship``.
    """
    options = TreeOptions(executor=executor)
    source, destination = Endpoint(None, str(src)), Endpoint(store, "tree")
    batch = Batch("upload_tree", source, destination, options.plain())
    runner = Runner(max_workers=options.max_workers, executor=None, on_file=None, fail_fast=False, in_process=False)
    tree = _Tree(rst.plugin_manager(), batch, options, source, destination, runner)
    try:
        tree.ship(rst.plugin_manager())
    finally:
        tree.close()
    assert tree.spec is not None
    return tree.spec


def test_the_serialized_task_holds_no_secret_but_a_store_built_by_value_would(
    dask_client, dask_moto, s3_config, s3_credentials, tmp_path
):
    """The contrast that shows the secret check can fail: the same spec built for a by-value S3 store holds them.

    Such a store is refused; with ``allow_pickled`` it travels, credentials included.
    """
    (tmp_path / "src").mkdir()
    key, secret = s3_credentials[S3_KEY_ENV], s3_credentials[S3_SECRET_ENV]
    by_config = rst.registry_store(s3_config, "archive")
    by_value = Store(
        backend=S3Backend(
            s3_config["backends"]["moto"]["options"]["bucket"],
            endpoint_url=dask_moto.endpoint,
            key=key,
            secret=secret,
            region_name=dask_moto.region,
        )
    )

    safe = _shipped_spec(by_config, tmp_path / "src", dask_client)
    _assert_no_secret(pickle.dumps(safe), s3_credentials)
    _assert_no_secret(cloudpickle.dumps(safe), s3_credentials)

    with pytest.raises(rst.CannotTravel, match="allow_pickled"):  # refused, unless the caller opts in
        _shipped_spec(by_value, tmp_path / "src", dask_client)
    leaky = _shipped_spec(rst.allow_pickled(by_value), tmp_path / "src", dask_client)
    assert leaky.dst is not None
    assert leaky.dst.payload is not None  # travels pickled, as it is
    for payload in (pickle.dumps(by_value), pickle.dumps(leaky), cloudpickle.dumps(leaky)):
        assert all(value.encode() in payload for value in s3_credentials.values())


def test_a_registry_store_given_as_a_plugin_setting_travels_without_its_secret(
    dask_client, s3_config, s3_credentials, submitted, tmp_path
):
    """An audit sink on a ``registry_store`` (a setting made in the caller, applied on every worker).

    docs/dask.md: with ``registry_store()``, "Nothing secret is in the tasks".
    The setting travels to the workers with every file; the store in it must
    travel as its unresolved config and name, like a tree's own store does.
    Fails today, on purpose: ``tree.worker.plugin_spec`` pickles the settings
    as they are, so the store goes by value, with its resolved credentials.
    """
    files = make_tree(tmp_path / "src", 4)
    audit_store = rst.registry_store(s3_config, "archive")
    rst.enable_plugin("audit", store=audit_store, prefix="audit")
    (tmp_path / "dst").mkdir()
    destination = Store(backend=LocalBackend(root=str(tmp_path / "dst")))

    result = rst.upload_tree(destination, tmp_path / "src", "up", executor=dask_client)

    assert result.ok, result.failed
    verified = verify_store(audit_store, "audit")  # the workers wrote their records through the setting's store
    assert verified.ok, str(verified)
    assert verified.records == len(files) + 1
    assert len(submitted) == len(files)
    for call in submitted:
        _assert_task_has_no_secret(call, s3_credentials)


def _builds_counted() -> int:
    from remote_store_transfer.tree import shipping

    return getattr(shipping, "_test_builds", 0)


def test_a_registry_store_is_built_once_per_worker_not_once_per_file(dask_client, s3_config, tmp_path):
    """Each worker process builds the store of a spec once and reuses it for every file it moves."""
    files = make_tree(tmp_path / "src", 24)
    config = copy.deepcopy(s3_config)
    config["stores"]["once"] = dict(config["stores"]["archive"])  # a store no earlier test opened
    s3 = rst.registry_store(config, "once")

    def count_builds() -> None:  # in each worker: every store build through a registry is counted
        from remote_store_transfer.tree import shipping

        if getattr(shipping, "_test_wrapped", False):
            return
        real = shipping.Registry

        class Counting(real):  # type: ignore[misc,valid-type]
            def get_store(self, name: str) -> Any:
                shipping._test_builds = getattr(shipping, "_test_builds", 0) + 1  # type: ignore[attr-defined]
                return super().get_store(name)

        shipping.Registry = Counting  # type: ignore[misc]
        shipping._test_wrapped = True  # type: ignore[attr-defined]

    dask_client.run(count_builds)
    before = dask_client.run(_builds_counted)

    result = rst.upload_tree(s3, tmp_path / "src", "once", executor=dask_client, atomic=True)

    assert result.ok, result.failed
    assert store_tree(s3, "once") == files
    builds = {worker: count - before[worker] for worker, count in dask_client.run(_builds_counted).items()}
    # 24 files over 2 workers: built once by each worker that moved files (once per file would be 24)
    assert 1 <= sum(builds.values()) <= len(builds), builds
    assert all(n <= 1 for n in builds.values()), builds
