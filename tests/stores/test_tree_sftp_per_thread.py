"""A tree over an SFTP store from ``registry_store``: one connection per worker thread, new folders made safely."""

from __future__ import annotations

import threading
from pathlib import Path

from remote_store import Store

from harness import SshServer
from remote_store_transfer import download_tree, registry_store, upload_tree
from remote_store_transfer.tree.shipping import SharedStore


def _config(ssh: SshServer, root: str) -> dict[str, object]:
    options = {
        "host": "127.0.0.1",
        "port": ssh.port,
        "username": ssh.user,
        "base_path": str(ssh.root),
        "host_key_policy": "strict",
        "known_host_keys": f"[127.0.0.1]:{ssh.port} {ssh.host_public}\n",
        "connect_kwargs": {"key_filename": str(ssh.user_key), "look_for_keys": False, "allow_agent": False},
    }
    return {
        "backends": {"sftp": {"type": "sftp", "options": options}},
        "stores": {"t": {"backend": "sftp", "root_path": root}},
    }


def test_many_threads_create_the_same_new_folders_without_losing_a_file(ssh_server: SshServer, tmp_path: Path) -> None:
    # Every file of each folder starts at once in its own thread and connection: two connections creating the
    # same new folder made OpenSSH answer one of them with a generic failure, and that file was lost.
    source = tmp_path / "src"
    files = {f"d{d}/sub{s}/f{i}.bin": bytes([d, s, i]) * 100 for d in range(3) for s in range(2) for i in range(4)}
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    store = registry_store(_config(ssh_server, "per-thread"), "t")
    try:
        result = upload_tree(store, source, "up", max_workers=8)
        assert result.ok, result.failed
        assert sorted(result.transferred) == sorted(files)
        for rel, data in files.items():
            assert (ssh_server.root / "per-thread" / "up" / rel).read_bytes() == data

        back = download_tree(store, "up", tmp_path / "back", max_workers=8)
        assert back.ok, back.failed
        assert {
            p.relative_to(tmp_path / "back").as_posix(): p.read_bytes() for p in (tmp_path / "back").rglob("*.bin")
        } == files
    finally:
        store.close()


def test_a_child_of_a_registry_sftp_store_is_opened_once_per_thread_too(ssh_server: SshServer, tmp_path: Path) -> None:
    # registry_store(...).child(...) (its parent gone) is still opened per thread, as its config plus the sub-path.
    source = tmp_path / "src"
    files = {f"d{d}/f{i}.bin": bytes([d, i]) * 50 for d in range(2) for i in range(4)}
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    child = registry_store(_config(ssh_server, "per-thread-child"), "t").child("team").child("2024")
    shared = SharedStore(child)
    try:
        assert shared.per_thread
        assert shared.lock is None
        clones: list[Store | None] = []
        worker = threading.Thread(target=lambda: clones.append(shared.get()))
        worker.start()
        worker.join()
        clones.append(shared.get())
        assert all(clone is not None and clone != child for clone in clones)  # own backends: own connections
        assert clones[0] is not clones[1]
        assert {clone.native_path("") for clone in clones if clone is not None} == {child.native_path("")}
    finally:
        shared.close()

    result = upload_tree(child, source, "up", max_workers=4)
    assert result.ok, result.failed
    for rel, data in files.items():
        assert (ssh_server.root / "per-thread-child" / "team" / "2024" / "up" / rel).read_bytes() == data
