"""The policy plugin: every rule, through the public functions, configured by API and by TOML."""

from __future__ import annotations

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

import remote_store_transfer as rst
from remote_store_transfer import TransferDenied, configure, enable_plugin
from remote_store_transfer.plugin.policy import store_location


def denied(call, rule: str) -> TransferDenied:
    with pytest.raises(TransferDenied) as caught:
        call()
    assert caught.value.rule == rule
    assert rule in str(caught.value) and caught.value.reason in str(caught.value)
    return caught.value


def test_max_size_upload_known_locally(manager, memory_store, make_file):
    enable_plugin("policy", manager=manager, max_size=1000)
    manager.upload(memory_store, make_file("small", 1000), "small")
    error = denied(lambda: manager.upload(memory_store, make_file("big", 1001), "big"), "max_size")
    assert "1001" in error.reason and "1000" in error.reason
    assert not memory_store.exists("big")  # nothing was written


@pytest.mark.parametrize("store_fixture", ["memory_store", "local_store"])
def test_max_size_download_and_transfer_ask_the_store(request, manager, tmp_path, store_fixture):
    store: Store = request.getfixturevalue(store_fixture)
    store.write("big", b"x" * 2000)
    store.write("small", b"x" * 10)
    enable_plugin("policy", manager=manager, max_size=1000)
    manager.download(store, "small", tmp_path / "small")
    manager.transfer(store, "small", store, "small2")
    denied(lambda: manager.download(store, "big", tmp_path / "big"), "max_size")
    denied(lambda: manager.transfer(store, "big", store, "big2"), "max_size")
    assert not (tmp_path / "big").exists()
    assert not store.exists("big2")


def test_max_size_without_remote_size_check(manager, memory_store, tmp_path):
    memory_store.write("big", b"x" * 2000)
    memory_store.write("small", b"x" * 500)
    enable_plugin("policy", manager=manager, max_size=1000, check_remote_size=False)
    manager.download(memory_store, "small", tmp_path / "small")  # no metadata call, and under the limit
    # no size asked up front, but the bytes that move are counted: the limit still holds
    denied(lambda: manager.download(memory_store, "big", tmp_path / "big", atomic=True), "max_size")
    assert not (tmp_path / "big").exists()


def test_read_only_store_objects(manager, tmp_path, make_file):
    archive = Store(backend=LocalBackend(root=str(tmp_path / "archive")))
    work = Store(backend=MemoryBackend())
    work.write("f", b"data")
    enable_plugin("policy", manager=manager, read_only=[archive])
    source = make_file("f", 10)
    denied(lambda: manager.upload(archive, source, "f"), "read_only")
    denied(lambda: manager.transfer(work, "f", archive, "f"), "read_only")
    denied(lambda: manager.upload(archive.child("sub"), source, "f"), "read_only")  # a scope of it
    # Another Store object on the same directory is the same place.
    same_place = Store(backend=LocalBackend(root=str(tmp_path / "archive")))
    denied(lambda: manager.upload(same_place, source, "g"), "read_only")
    # Reading from it and writing elsewhere is fine.
    archive.write("r", b"readable")
    manager.download(archive, "r", tmp_path / "r")
    manager.transfer(archive, "r", work, "r")
    manager.upload(work, source, "g")


def test_read_only_patterns_match_the_location(manager, tmp_path, make_file):
    archive = Store(backend=LocalBackend(root=str(tmp_path / "archive")))
    other = Store(backend=LocalBackend(root=str(tmp_path / "other")))
    assert store_location(archive, "a/b") == f"local:{tmp_path}/archive/a/b"
    enable_plugin("policy", manager=manager, read_only=[f"local:{tmp_path}/archive*", "memory:*"])
    source = make_file("f", 10)
    error = denied(lambda: manager.upload(archive, source, "a/b"), "read_only")
    assert f"{tmp_path}/archive/a/b" in error.reason
    denied(lambda: manager.upload(Store(backend=MemoryBackend()), source, "x"), "read_only")
    manager.upload(other, source, "a/b")


def test_deny_overwrite(manager, memory_store, make_file, tmp_path):
    enable_plugin("policy", manager=manager, deny_overwrite=True)
    source = make_file("f", 10)
    manager.upload(memory_store, source, "f")
    denied(lambda: manager.upload(memory_store, source, "f", overwrite=True), "deny_overwrite")
    denied(lambda: manager.download(memory_store, "f", tmp_path / "f", overwrite=True), "deny_overwrite")
    denied(lambda: manager.transfer(memory_store, "f", memory_store, "g", overwrite=True), "deny_overwrite")


def test_path_rules_per_operation(manager, memory_store, make_file, tmp_path):
    enable_plugin(
        "policy",
        manager=manager,
        upload={"allow": ["reports/*", "inbox/*"], "deny": ["*.exe"]},
        download={"deny": ["secret/*"]},
        transfer={"allow": ["reports/*", "archive/*"]},
    )
    source = make_file("f", 10)
    manager.upload(memory_store, source, "reports/q1.csv")
    manager.upload(memory_store, source, "/reports//q2.csv")  # normalized before matching
    error = denied(lambda: manager.upload(memory_store, source, "tmp/q1.csv"), "upload.allow")
    assert "tmp/q1.csv" in error.reason
    denied(lambda: manager.upload(memory_store, source, "inbox/tool.exe"), "upload.deny")
    memory_store.write("secret/key", b"k")
    denied(lambda: manager.download(memory_store, "secret/key", tmp_path / "k"), "download.deny")
    manager.download(memory_store, "reports/q1.csv", tmp_path / "q1")
    manager.transfer(memory_store, "reports/q1.csv", memory_store, "archive/q1.csv")
    denied(lambda: manager.transfer(memory_store, "secret/key", memory_store, "archive/k"), "transfer.allow")
    denied(lambda: manager.transfer(memory_store, "reports/q1.csv", memory_store, "public/q1"), "transfer.allow")


def test_denial_happens_before_other_plugins_and_is_seen_by_post_transfer(manager, memory_store, make_file):
    seen = []

    class Observer:
        @rst.hookimpl
        def pre_transfer(self, context):
            seen.append("pre")

        @rst.hookimpl
        def post_transfer(self, context, error):
            seen.append(type(error).__name__)

    manager.register(Observer(), name="observer")
    enable_plugin("policy", manager=manager, max_size=1)  # registered after the observer, runs first (tryfirst)
    with pytest.raises(TransferDenied):
        manager.upload(memory_store, make_file("f", 10), "f")
    assert seen == ["TransferDenied"]


def test_policy_from_toml(tmp_path, memory_store, make_file):
    config = tmp_path / "transfer.toml"
    config.write_text(
        """
[plugins.policy]
max_size = 100
deny_overwrite = true
read_only = ["local:/srv/archive/*"]

[plugins.policy.upload]
allow = ["reports/*"]
deny = ["reports/private/*"]
"""
    )
    assert configure(config) == ["policy"]
    source = make_file("f", 10)
    rst.upload(memory_store, source, "reports/a")
    denied(lambda: rst.upload(memory_store, source, "reports/private/a"), "upload.deny")
    denied(lambda: rst.upload(memory_store, make_file("big", 101), "reports/big"), "max_size")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"max_size": -1}, "max_size"),
        ({"upload": {"allow": "reports/*"}}, "list of strings"),
        ({"upload": {"permit": ["x"]}}, "permit"),
        ({"read_only": [42]}, "read_only"),
    ],
)
def test_bad_api_options(options, problem):
    with pytest.raises(rst.ConfigError, match=problem):
        enable_plugin("policy", **options)
