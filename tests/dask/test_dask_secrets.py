"""No secret in the tasks: a ``child()`` of a registry store travels as config + name + sub-path; a store that
would carry its credentials pickled is refused unless the caller opts in (``allow_pickled``).

Every tree runs on a real ``ProcessPoolExecutor`` (spawned processes) against a real moto S3 server.
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import cloudpickle
import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, S3Backend
from rst_dask_kit import S3_KEY_ENV, S3_SECRET_ENV, CallerSpy, local_tree, make_tree, store_tree

import remote_store_transfer as rst
from remote_store_transfer import CannotTravel
from remote_store_transfer.audit import verify_store
from remote_store_transfer.tree.shipping import store_spec
from remote_store_transfer.tree.worker import BatchSpec


def _leaks(call: functools.partial[Any], credentials: dict[str, str]) -> list[str]:
    """The credential variables whose value is in the task, as pickle and cloudpickle serialize it."""
    payloads = (pickle.dumps(call), cloudpickle.dumps(call), call.args[0].plugins.payload)
    return [name for name, value in credentials.items() if any(value.encode() in p for p in payloads)]


def _by_value(s3_config: dict[str, Any], credentials: dict[str, str]) -> Store:
    """The registry's S3 store built by value: its backend holds the secret."""
    options = s3_config["backends"]["moto"]["options"]
    backend = S3Backend(
        options["bucket"],
        endpoint_url=options["endpoint_url"],
        region_name=options["region_name"],
        key=credentials[S3_KEY_ENV],
        secret=credentials[S3_SECRET_ENV],
    )
    return Store(backend=backend).child(s3_config["stores"]["archive"]["root_path"])


def test_a_child_of_a_registry_store_travels_as_config_name_and_sub_path(
    pool, s3_config, s3_credentials, submitted, tmp_path
):
    """``registry_store(...).child()`` (and a child of that): the files move, no task holds the secret."""
    files = make_tree(tmp_path / "src", 6)
    s3 = rst.registry_store(s3_config, "archive")
    team = s3.child("team")
    year = team.child("2024")

    up = rst.upload_tree(year, tmp_path / "src", "tree", executor=pool, atomic=True)
    down = rst.download_tree(team, "2024/tree", tmp_path / "back", executor=pool, atomic=True)

    for result in (up, down):
        assert result.ok, result.failed
        assert sorted(result.transferred) == sorted(files)
    assert store_tree(s3, "team/2024/tree") == files
    assert local_tree(tmp_path / "back") == files
    specs = {id(call.args[0]): call.args[0] for call in submitted}.values()
    shipped = sorted(
        (spec.dst if spec.operation == "upload_tree" else spec.src for spec in specs), key=lambda s: s.sub_path
    )
    assert [(s.payload, s.store_name, s.sub_path) for s in shipped] == [
        (None, "archive", "team"),
        (None, "archive", "team/2024"),
    ]
    assert len(submitted) == 2 * len(files)
    for call in submitted:
        assert isinstance(call.args[0], BatchSpec)
        assert _leaks(call, s3_credentials) == []


def test_a_child_of_a_registry_store_given_as_a_plugin_setting_travels_without_its_secret(
    pool, s3_config, s3_credentials, submitted, tmp_path
):
    files = make_tree(tmp_path / "src", 3)
    logs = rst.registry_store(s3_config, "archive").child("logs")
    rst.enable_plugin("audit", store=logs.child("audit"), prefix="run")
    (tmp_path / "dst").mkdir()

    result = rst.upload_tree(Store(LocalBackend(str(tmp_path / "dst"))), tmp_path / "src", "up", executor=pool)

    assert result.ok, result.failed
    verified = verify_store(logs, "audit/run")  # the workers wrote their records through the setting's store
    assert verified.ok, str(verified)
    assert verified.records == len(files) + 1
    assert len(submitted) == len(files)
    for call in submitted:
        assert _leaks(call, s3_credentials) == []


def test_a_store_with_its_secret_in_it_is_refused_before_anything_moves_and_travels_when_allowed(
    pool, s3_config, s3_credentials, submitted, tmp_path
):
    files = make_tree(tmp_path / "src", 4)
    by_value = _by_value(s3_config, s3_credentials)
    spy = CallerSpy()
    rst.plugin_manager().register(spy, name="caller-spy")

    with pytest.raises(CannotTravel) as caught:
        rst.upload_tree(by_value, tmp_path / "src", "tree", executor=pool)

    message = str(caught.value)
    assert repr(by_value) in message
    assert "destination" in message
    assert "registry_store()" in message
    assert "allow_pickled(store)" in message
    assert s3_credentials[S3_SECRET_ENV] not in message
    assert (spy.batches, submitted) == ([], [])  # refused before pre_batch, before any task
    assert store_tree(by_value, "tree") == {}

    assert rst.allow_pickled(by_value) is by_value
    result = rst.upload_tree(by_value, tmp_path / "src", "tree", executor=pool)

    assert result.ok, result.failed
    assert store_tree(by_value, "tree") == files
    assert len(submitted) == len(files)
    assert all(_leaks(call, s3_credentials) for call in submitted)  # opted in: the secret travels, as asked


def test_a_store_with_its_secret_in_it_is_refused_as_a_plugin_setting_and_travels_when_allowed(
    pool, s3_config, s3_credentials, tmp_path
):
    files = make_tree(tmp_path / "src", 2)
    audit_store = _by_value(s3_config, s3_credentials).child("audit")
    rst.enable_plugin("audit", store=audit_store, prefix="run")
    (tmp_path / "dst").mkdir()
    destination = Store(LocalBackend(str(tmp_path / "dst")))

    with pytest.raises(CannotTravel) as caught:
        rst.upload_tree(destination, tmp_path / "src", "up", executor=pool)

    message = str(caught.value)
    assert "the setting 'store' of plugin 'audit'" in message
    assert repr(audit_store) in message
    assert "allow_pickled(store)" in message
    assert local_tree(tmp_path / "dst") == {}

    rst.allow_pickled(audit_store)
    result = rst.upload_tree(destination, tmp_path / "src", "up", executor=pool)

    assert result.ok, result.failed
    assert local_tree(tmp_path / "dst" / "up") == files
    assert verify_store(audit_store, "run").records == len(files) + 1


def test_stores_without_a_secret_in_them_keep_traveling_pickled(
    dask_moto, s3_config, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    """A local store, and an S3 store whose credentials come from the environment, travel as they are."""
    local = Store(LocalBackend(str(tmp_path)))
    options = s3_config["backends"]["moto"]["options"]
    from_env = Store(S3Backend(options["bucket"], endpoint_url=options["endpoint_url"]))
    assert store_spec(local, "source").payload is not None
    assert store_spec(from_env, "destination").payload is not None

    files = make_tree(tmp_path / "src", 3)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")  # moto takes any; the spawned processes inherit them
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", options["region_name"])
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as own_pool:
        result = rst.upload_tree(
            from_env, tmp_path / "src", f"{s3_config['stores']['archive']['root_path']}/env", executor=own_pool
        )
    assert result.ok, result.failed
    assert store_tree(from_env, f"{s3_config['stores']['archive']['root_path']}/env") == files
