"""upload / download / copy as subprocesses, against local, memory and S3 (moto) stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def one_json(stdout: str) -> dict:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


def stored(registry, store: str, key: str) -> bytes:
    """What the store *store* of the registry holds at *key*, read without the CLI."""
    if store == "local":
        return (registry.local_root / key).read_bytes()
    assert store == "s3"
    return registry.s3_get(key)


@pytest.mark.parametrize("store", ["local", "s3"])
def test_upload_then_download_round_trips(cli_stores, registry, store):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (cli_stores.cwd / "report.bin").write_bytes(data)

    up = cli_stores("upload", "report.bin", f"{store}:reports/report.bin")
    assert up.returncode == 0, up.stderr
    assert up.stderr == ""
    assert up.stdout.startswith(f"upload {cli_stores.cwd / 'report.bin'} -> {store}:reports/report.bin: 3.0 MiB in ")
    assert stored(registry, store, "reports/report.bin") == data
    if store == "s3":
        assert registry.s3_keys() == [f"{registry.s3_prefix}/reports/report.bin"]

    down = cli_stores("download", f"{store}:reports/report.bin", "copy.bin")
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith(f"download {store}:reports/report.bin -> {cli_stores.cwd / 'copy.bin'}: 3.0 MiB")
    assert (cli_stores.cwd / "copy.bin").read_bytes() == data


def test_upload_reports_the_bytes(cli_stores):
    (cli_stores.cwd / "a.bin").write_bytes(b"x" * 1000)
    result = cli_stores("upload", "a.bin", "s3:a.bin", "--json")
    assert result.returncode == 0, result.stderr
    obj = one_json(result.stdout)
    assert obj["ok"] is True
    assert obj["bytes"] == 1000
    assert obj["destination"] == "s3:a.bin"


@pytest.mark.parametrize(("src", "dst"), [("local", "s3"), ("s3", "local"), ("s3", "s3"), ("local", "local")])
def test_copy_between_stores(cli_stores, registry, src, dst):
    data = os.urandom(2 * 1024 * 1024)
    if src == "local":
        (registry.local_root / "in").mkdir()
        (registry.local_root / "in" / "data.bin").write_bytes(data)
    else:
        registry.s3_put("in/data.bin", data)

    result = cli_stores("copy", f"{src}:in/data.bin", f"{dst}:out/", "--json")

    assert result.returncode == 0, result.stderr
    obj = one_json(result.stdout)
    assert obj == {
        "operation": "copy",
        "source": f"{src}:in/data.bin",
        "destination": f"{dst}:out/data.bin",
        "bytes": len(data),
        "seconds": obj["seconds"],
        "ok": True,
    }
    assert obj["seconds"] >= 0
    assert stored(registry, dst, "out/data.bin") == data


def test_json_object_for_upload_and_download(cli_stores, registry):
    (cli_stores.cwd / "a.txt").write_bytes(b"hello")
    up = one_json(cli_stores("upload", "a.txt", "local:", "--json").stdout)
    assert up == {
        "operation": "upload",
        "source": str(cli_stores.cwd / "a.txt"),
        "destination": "local:a.txt",
        "bytes": 5,
        "seconds": up["seconds"],
        "ok": True,
    }
    assert (registry.local_root / "a.txt").read_bytes() == b"hello"
    down = one_json(cli_stores("download", "local:a.txt", "b.txt", "--json").stdout)
    assert down["destination"] == str(cli_stores.cwd / "b.txt")
    assert down["bytes"] == 5
    assert down["ok"] is True


def test_download_into_an_existing_directory_keeps_the_name(cli_stores, registry):
    (registry.local_root / "x.csv").write_bytes(b"a,b\n")
    (cli_stores.cwd / "into").mkdir()
    result = cli_stores("download", "local:x.csv", "into", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert (cli_stores.cwd / "into" / "x.csv").read_bytes() == b"a,b\n"


@pytest.mark.parametrize("store", ["local", "s3"])
def test_atomic_upload_and_download(cli_stores, registry, store):
    (cli_stores.cwd / "a.bin").write_bytes(b"atomic" * 1000)
    up = cli_stores("upload", "a.bin", f"{store}:a.bin", "--atomic")
    assert up.returncode == 0, up.stderr
    down = cli_stores("download", f"{store}:a.bin", "b.bin", "--atomic")
    assert down.returncode == 0, down.stderr
    assert (cli_stores.cwd / "b.bin").read_bytes() == b"atomic" * 1000
    assert sorted(p.name for p in cli_stores.cwd.iterdir()) == ["a.bin", "b.bin"]


def test_overwrite(cli_stores, registry):
    (registry.local_root / "r.txt").write_bytes(b"old")
    (cli_stores.cwd / "r.txt").write_bytes(b"new")

    refused = cli_stores("upload", "r.txt", "local:r.txt")
    assert refused.returncode == 4
    assert (registry.local_root / "r.txt").read_bytes() == b"old"

    replaced = cli_stores("upload", "r.txt", "local:r.txt", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert (registry.local_root / "r.txt").read_bytes() == b"new"


def test_config_option_beats_the_environment(cli, registry):
    (registry.local_root / "f.txt").write_bytes(b"f")
    env = {"REMOTE_STORE_TRANSFER_STORES": "/nope"}
    result = cli("download", "local:f.txt", "f.txt", "--config", str(registry.path), env=env)
    assert result.returncode == 0, result.stderr
    assert (cli.cwd / "f.txt").read_bytes() == b"f"


def test_env_placeholders_in_the_registry_are_resolved(cli, tmp_path):
    root = tmp_path / "from-env"
    config = tmp_path / "env.toml"
    config.write_text(
        '[backends.d]\ntype = "local"\noptions = { root = "${DATA_ROOT}" }\n\n[stores.data]\nbackend = "d"\n'
    )
    (cli.cwd / "a").write_bytes(b"1")
    result = cli("upload", "a", "data:a", "--config", str(config), env={"DATA_ROOT": str(root)})
    assert result.returncode == 0, result.stderr
    assert (root / "a").read_bytes() == b"1"


def test_console_script_is_installed(tmp_path):
    script = Path(sys.executable).parent / "remote-store-transfer"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("remote-store-transfer, version ")
