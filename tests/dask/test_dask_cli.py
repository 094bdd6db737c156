"""The command line's --dask ADDRESS: -r and sync run their files on the cluster's worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rst_dask_kit import local_tree, make_tree


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORE_TRANSFER_")}
    return subprocess.run(
        [sys.executable, "-m", "remote_store_transfer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
        check=False,
    )


def test_upload_r_and_sync_with_dask_run_on_the_cluster(dask_cluster: Any, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", 12)
    (tmp_path / "disk").mkdir()
    registry = tmp_path / "stores.toml"
    registry.write_text(
        f'[backends.disk]\ntype = "local"\noptions = {{ root = "{tmp_path / "disk"}" }}\n\n'
        '[stores.disk]\nbackend = "disk"\n'
    )
    address = dask_cluster.scheduler_address

    up = _cli("upload", "-r", "src", "disk:up", "--config", str(registry), "--dask", address, "--json", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    summary = json.loads(up.stdout.strip().splitlines()[-1])
    assert summary["transferred"] == len(files)
    assert summary["ok"] is True
    assert local_tree(tmp_path / "disk" / "up") == files

    down = _cli("sync", "disk:up", "copy", "--config", str(registry), "--dask", address, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert f"{len(files)} transferred" in down.stdout
    assert local_tree(tmp_path / "copy") == files

    again = _cli("sync", "disk:up", "copy", "--config", str(registry), "--dask", address, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 transferred" in again.stdout


def test_dask_with_bwlimit_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "stores.toml").write_text(
        '[backends.d]\ntype = "local"\noptions = { root = "/tmp" }\n[stores.d]\nbackend = "d"\n'
    )
    result = _cli(
        "upload",
        "-r",
        "src",
        "d:x",
        "--config",
        "stores.toml",
        "--dask",
        "tcp://127.0.0.1:1",
        "--bwlimit",
        "1M",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--bwlimit" in result.stderr
