"""A tree over an SFTP store from ``registry_store``: one connection per worker thread, new folders made safely."""

from __future__ import annotations

from pathlib import Path

from storekit import SshServer

from remote_store_transfer import download_tree, registry_store, upload_tree


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
