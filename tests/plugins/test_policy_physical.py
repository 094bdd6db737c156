"""The policy plugin on physical locations: path rules on ``"<backend>:<native path>"``, ``physical=True``,
real paths for ``read_only``, ``max_size`` on the bytes that move, and case-insensitive matching.

Each trick (a ``child()`` scope, ``..``, ``./``, ``//``, another case, a symlink) is tried on a local,
a memory and an S3 store (the session's moto server).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from remote_store import Store
from remote_store.backends import LocalBackend, MemoryBackend

import remote_store_transfer as rst
from harness import MotoServer
from remote_store_transfer import TransferDenied, TransferManager, configure, enable_plugin
from remote_store_transfer.plugin.policy import is_physical, store_location

Trick = Callable[[Store], tuple[Store, str]]

# Every spelling of "secret/key" that is not literally "secret/key" of the store passed to the call.
TRICKS: dict[str, Trick] = {
    "child": lambda store: (store.child("secret"), "key"),
    "dotdot": lambda store: (store, "a/../secret/key"),
    "dot": lambda store: (store, "./secret/key"),
    "double-slash": lambda store: (store, "secret//key"),
    "case": lambda store: (store, "SECRET/key"),
}


def denied(call: Callable[[], object], rule: str) -> TransferDenied:
    with pytest.raises(TransferDenied) as caught:
        call()
    assert caught.value.rule == rule
    return caught.value


@pytest.fixture(params=["local", "memory", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, str]:
    """A new store and the physical location of its root, ending with ``/`` (``"memory:"`` for memory)."""
    if request.param == "local":
        root = tmp_path / "root"
        root.mkdir()
        return Store(backend=LocalBackend(root=str(root))), f"local:{os.path.realpath(root)}/"
    if request.param == "memory":
        return Store(backend=MemoryBackend()), "memory:"
    moto: MotoServer = request.getfixturevalue("moto_server")
    bucket = f"policy-{uuid.uuid4().hex[:12]}"
    return moto.store(bucket), f"s3:{bucket}/"


def _fill(store: Store) -> None:
    for path in ("secret/key", "SECRET/key", "public/key"):
        store.write(path, b"kept", overwrite=True)


def _tried(manager: TransferManager, store: Store, path: str, tmp_path: Path, rule_prefix: str) -> None:
    """A download and an upload of *path* are refused, and nothing is read or written."""
    out = tmp_path / "out"
    denied(lambda: manager.download(store, path, out), f"download.{rule_prefix}")
    assert not out.exists()
    source = tmp_path / "new"
    source.write_bytes(b"new")
    denied(lambda: manager.upload(store, source, path, overwrite=True), f"upload.{rule_prefix}")


# region: path rules on physical locations


def test_is_physical():
    assert is_physical("local:/srv/secrets/**") and is_physical("s3:bucket/x") and is_physical("memory:secrets/*")
    assert not is_physical("secrets/*") and not is_physical("*.exe") and not is_physical("backup[:]2024/*")


@pytest.mark.parametrize("trick", ["child", "dotdot", "dot", "double-slash"])
def test_physical_patterns_see_through_scopes_and_spellings(manager, place, tmp_path, trick):
    store, root = place
    _fill(store)
    rules = {"deny": [f"{root}secret/*"]}
    enable_plugin("policy", manager=manager, upload=rules, download=rules)
    target, path = TRICKS[trick](store)
    _tried(manager, target, path, tmp_path, "deny")
    assert store.read_bytes("secret/key") == b"kept"
    manager.download(store.child("public"), "key", tmp_path / "public")  # elsewhere is fine
    assert (tmp_path / "public").read_bytes() == b"kept"


def test_relative_patterns_alone_do_not_see_a_child_scope(manager, memory_store, tmp_path):
    memory_store.write("secret/key", b"kept")
    enable_plugin("policy", manager=manager, download={"deny": ["secret/*"]})
    denied(lambda: manager.download(memory_store, "secret/key", tmp_path / "a"), "download.deny")
    manager.download(memory_store.child("secret"), "key", tmp_path / "b")  # documented: use a physical rule


def test_physical_allow_patterns(manager, place, tmp_path):
    store, root = place
    _fill(store)
    enable_plugin("policy", manager=manager, download={"allow": [f"{root}public/*"]})
    manager.download(store.child("public"), "key", tmp_path / "a")
    manager.download(store, "./public//key", tmp_path / "b")
    error = denied(lambda: manager.download(store.child("secret"), "key", tmp_path / "c"), "download.allow")
    assert "public/*" in error.reason


def test_transfer_rules_check_both_ends_physically(manager, memory_store, tmp_path):
    memory_store.write("secret/key", b"kept")
    memory_store.write("public/key", b"pub")
    enable_plugin("policy", manager=manager, transfer={"deny": ["memory:secret/*"]})
    denied(lambda: manager.transfer(memory_store.child("secret"), "key", memory_store, "out"), "transfer.deny")
    denied(lambda: manager.transfer(memory_store, "public/key", memory_store.child("secret"), "key2"), "transfer.deny")
    assert not memory_store.exists("secret/key2")
    manager.transfer(memory_store, "public/key", memory_store, "public/copy")


# endregion

# region: physical=True


@pytest.mark.parametrize("trick", list(TRICKS))
def test_physical_option_stops_every_trick(manager, place, tmp_path, trick):
    store, root = place
    _fill(store)
    native_root = root.partition(":")[2]  # patterns without "<backend>:" match the native path
    rules = {"deny": [f"{native_root}secret/*"]}
    enable_plugin("policy", manager=manager, upload=rules, download=rules, physical=True, case_insensitive=True)
    target, path = TRICKS[trick](store)
    _tried(manager, target, path, tmp_path, "deny")
    assert store.read_bytes("secret/key") == b"kept"
    assert store.read_bytes("SECRET/key") == b"kept"
    manager.download(store, "public/key", tmp_path / "public")


def test_physical_option_follows_local_symlinks(manager, tmp_path):
    root = tmp_path / "root"
    (root / "secret").mkdir(parents=True)
    (root / "public").mkdir()
    (root / "secret" / "key").write_bytes(b"kept")
    (root / "public" / "link").symlink_to(root / "secret", target_is_directory=True)
    store = Store(backend=LocalBackend(root=str(root)))
    rules = {"deny": [f"local:{os.path.realpath(root)}/secret/*"]}
    enable_plugin("policy", manager=manager, upload=rules, download=rules, physical=True)
    _tried(manager, store, "public/link/key", tmp_path, "deny")
    _tried(manager, store.child("public/link"), "key", tmp_path, "deny")
    assert (root / "secret" / "key").read_bytes() == b"kept"


def test_physical_allow_uses_the_real_path(manager, tmp_path):
    root = tmp_path / "root"
    (root / "secret").mkdir(parents=True)
    (root / "public").mkdir()
    (root / "secret" / "key").write_bytes(b"kept")
    (root / "public" / "key").write_bytes(b"pub")
    (root / "public" / "link").symlink_to(root / "secret", target_is_directory=True)
    store = Store(backend=LocalBackend(root=str(root)))
    enable_plugin("policy", manager=manager, download={"allow": [f"{os.path.realpath(root)}/public/*"]}, physical=True)
    manager.download(store, "public/key", tmp_path / "a")
    denied(lambda: manager.download(store, "public/link/key", tmp_path / "b"), "download.allow")


def test_a_path_above_the_root_fails_closed(manager, memory_store, tmp_path):
    enable_plugin("policy", manager=manager, download={"deny": ["secret/*"]}, physical=True)
    error = denied(lambda: manager.download(memory_store, "../secret/key", tmp_path / "a"), "download.deny")
    assert "no physical location" in error.reason


# endregion

# region: read_only on real paths


@pytest.mark.parametrize("form", ["pattern", "store"])
@pytest.mark.parametrize("operation", ["upload", "transfer"])
def test_read_only_sees_through_a_symlink_into_the_archive(manager, tmp_path, form, operation):
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    (archive_dir / "a.csv").write_bytes(b"archived")
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    (work_dir / "link").symlink_to(archive_dir, target_is_directory=True)
    work = Store(backend=LocalBackend(root=str(work_dir)))
    archive = Store(backend=LocalBackend(root=str(archive_dir)))
    entry: Store | str = archive if form == "store" else f"local:{os.path.realpath(archive_dir)}*"
    enable_plugin("policy", manager=manager, read_only=[entry])
    source = tmp_path / "new"
    source.write_bytes(b"overwritten")
    work.write("new", b"overwritten")
    if operation == "upload":
        denied(lambda: manager.upload(work, source, "link/a.csv", overwrite=True), "read_only")
    else:
        denied(lambda: manager.transfer(work, "new", work, "link/a.csv", overwrite=True), "read_only")
    denied(lambda: manager.upload(work.child("link"), source, "a.csv", overwrite=True), "read_only")
    assert (archive_dir / "a.csv").read_bytes() == b"archived"
    manager.upload(work, source, "elsewhere.csv")  # the rest of the work store is writable


def test_store_location_real():
    assert store_location(Store(backend=MemoryBackend()), "a", real=True) == "memory:a"


# endregion

# region: max_size on the bytes that move


class Grower:
    """A plugin whose ``pre_transfer`` (after the policy's, which is ``tryfirst``) makes the source bigger."""

    def __init__(self, grow: Callable[[], None]) -> None:
        self.grow = grow

    @rst.hookimpl
    def pre_transfer(self, context):
        self.grow()


@pytest.mark.parametrize("operation", ["upload", "download", "transfer"])
def test_max_size_stops_a_source_that_grows_after_the_check(manager, tmp_path, operation):
    root = tmp_path / "root"
    root.mkdir()
    store = Store(backend=LocalBackend(root=str(root)))
    store.write("src", b"x" * 10)
    store.write("dst", b"old")
    local = tmp_path / "local"
    local.write_bytes(b"x" * 10 if operation == "upload" else b"old")

    def grow() -> None:
        if operation == "upload":
            with open(local, "ab") as fh:
                fh.write(b"y" * 5000)
        else:
            store.write("src", b"y" * 5000, overwrite=True)

    enable_plugin("policy", manager=manager, max_size=100)
    manager.register(Grower(grow), name="grower")
    calls = {
        "upload": lambda: manager.upload(store, local, "dst", overwrite=True, atomic=True),
        "download": lambda: manager.download(store, "src", local, overwrite=True, atomic=True),
        "transfer": lambda: manager.transfer(store, "src", store, "dst", overwrite=True, atomic=True),
    }
    error = denied(calls[operation], "max_size")
    assert "100" in error.reason
    assert store.read_bytes("dst") == b"old"  # nothing committed
    if operation == "download":
        assert local.read_bytes() == b"old"
    assert sorted(os.listdir(root)) == ["dst", "src"]


@pytest.mark.parametrize("check_remote_size", [True, False])
def test_max_size_stops_a_fifo(manager, tmp_path, check_remote_size):
    root = tmp_path / "root"
    root.mkdir()
    store = Store(backend=LocalBackend(root=str(root)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    written = []

    def feed() -> None:
        try:
            with open(fifo, "wb") as fh:
                for _ in range(64):
                    fh.write(b"z" * 65536)
                    written.append(65536)
        except BrokenPipeError:  # the reader stopped: what the limit is for
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    enable_plugin("policy", manager=manager, max_size=200_000, check_remote_size=check_remote_size)
    try:
        denied(lambda: manager.upload(store, fifo, "dst", atomic=True), "max_size")
    finally:
        feeder.join(timeout=10)
    assert not store.exists("dst")
    assert os.listdir(root) == []
    assert sum(written) < 64 * 65536  # the feeder was cut off


def test_without_max_size_no_chunk_hook():
    from remote_store_transfer.plugin.policy import PolicyPlugin

    assert not hasattr(PolicyPlugin(), "on_chunk")
    assert hasattr(PolicyPlugin(max_size=1), "on_chunk")


# endregion

# region: case-insensitive matching


def test_case_insensitive_deny(manager, memory_store, make_file):
    source = make_file("f", 10)
    enable_plugin("policy", manager=manager, upload={"deny": ["secret/**"]})
    manager.upload(memory_store, source, "SECRET/x")  # case-sensitive by default
    other = TransferManager()
    enable_plugin("policy", manager=other, upload={"deny": ["secret/**"]}, case_insensitive=True)
    denied(lambda: other.upload(memory_store, source, "SECRET/y"), "upload.deny")
    denied(lambda: other.upload(memory_store, source, "Secret/y"), "upload.deny")
    assert not memory_store.exists("SECRET/y")
    other.upload(memory_store, source, "public/y")


def test_case_insensitive_read_only_pattern(manager, tmp_path, make_file):
    archive = Store(backend=LocalBackend(root=str(tmp_path / "Archive")))
    pattern = f"local:{os.path.realpath(tmp_path)}/archive*"
    enable_plugin("policy", manager=manager, read_only=[pattern], case_insensitive=True)
    denied(lambda: manager.upload(archive, make_file("f", 10), "a"), "read_only")


# endregion

# region: configuration


def test_new_options_from_toml(tmp_path, memory_store, make_file):
    config = tmp_path / "transfer.toml"
    config.write_text(
        """
[plugins.policy]
physical = true
case_insensitive = true

[plugins.policy.upload]
deny = ["memory:secret/*"]
"""
    )
    assert configure(config) == ["policy"]
    source = make_file("f", 10)
    denied(lambda: rst.upload(memory_store.child("Secret"), source, "x"), "upload.deny")
    rst.upload(memory_store, source, "public/x")


@pytest.mark.parametrize("key", ["physical", "case_insensitive"])
def test_new_options_are_type_checked(tmp_path, key):
    config = tmp_path / "transfer.toml"
    config.write_text(f'[plugins.policy]\n{key} = "yes"\n')
    with pytest.raises(rst.ConfigError, match=f"plugins.policy.{key}"):
        configure(config)
    with pytest.raises(rst.ConfigError, match=key):
        enable_plugin("policy", **{key: "yes"})


# endregion


def test_read_only_sees_through_dot_dot_in_the_destination(tmp_path):
    """A destination spelled with ``..`` is checked where it points, and one above the root is denied."""
    root = tmp_path / "archive"
    root.mkdir()
    archive = Store(backend=LocalBackend(root=str(root)))
    source = tmp_path / "f.txt"
    source.write_bytes(b"data")
    manager = rst.TransferManager()
    rst.enable_plugin("policy", manager=manager, read_only=[archive])
    for path in ("a/../b.txt", "../../escape.txt"):
        with pytest.raises(rst.TransferDenied) as info:
            manager.upload(archive, source, path)
        assert info.value.rule == "read_only"
    assert list(root.iterdir()) == []
