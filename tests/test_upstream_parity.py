"""Where the spec is silent, behave exactly like upstream ``remote_store.ext.transfer``.

Each scenario runs once with upstream's functions and once with ours, on
fresh but identical stores and files; the outcomes (exception type and
message, progress calls, bytes in the destination, files left behind) must
be equal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from remote_store import Capability, Store
from remote_store.backends import LocalBackend, MemoryBackend
from remote_store.ext import transfer as upstream

import remote_store_transfer as ours

from support import RecordingBackend

MiB = 1_048_576
PAYLOAD = bytes(range(256)) * (MiB // 256) + b"tail"  # 1 MiB + 4


def _world(tmp: Path, kind: str) -> dict[str, Any]:
    """Fresh stores and local files, the same for both implementations."""
    tmp.mkdir()
    (tmp / "local").mkdir()
    (tmp / "local" / "src.bin").write_bytes(PAYLOAD)
    (tmp / "local" / "exists.bin").write_bytes(b"local-old")
    (tmp / "local" / "folder").mkdir()
    if kind == "local":
        (tmp / "root").mkdir()
        store = Store(backend=LocalBackend(root=str(tmp / "root")))
    else:
        store = Store(backend=MemoryBackend())
    store.write("remote/src.bin", PAYLOAD)
    store.write("remote/exists.bin", b"remote-old")
    readonly = Store(backend=RecordingBackend(without={Capability.WRITE}))
    return {"store": store, "local": tmp / "local", "readonly": readonly}


def _raise(n: int) -> None:
    raise RuntimeError(f"callback refused {n} bytes")


SCENARIOS: dict[str, Callable[[Any, dict[str, Any], Callable[[int], None]], None]] = {
    "upload": lambda m, w, p: m.upload(w["store"], w["local"] / "src.bin", "remote/new.bin", on_progress=p),
    "upload-no-progress": lambda m, w, p: m.upload(w["store"], w["local"] / "src.bin", "remote/new.bin"),
    "upload-missing-local": lambda m, w, p: m.upload(w["store"], w["local"] / "nope.bin", "remote/new.bin"),
    "upload-local-is-folder": lambda m, w, p: m.upload(w["store"], w["local"] / "folder", "remote/new.bin"),
    "upload-exists": lambda m, w, p: m.upload(w["store"], w["local"] / "src.bin", "remote/exists.bin"),
    "upload-overwrite": lambda m, w, p: m.upload(
        w["store"], w["local"] / "src.bin", "remote/exists.bin", overwrite=True
    ),
    "upload-readonly": lambda m, w, p: m.upload(w["readonly"], w["local"] / "src.bin", "x.bin"),
    "upload-empty-remote-path": lambda m, w, p: m.upload(w["store"], w["local"] / "src.bin", ""),
    "upload-callback-raises": lambda m, w, p: m.upload(
        w["store"], w["local"] / "src.bin", "remote/new.bin", on_progress=_raise
    ),
    "download": lambda m, w, p: m.download(w["store"], "remote/src.bin", w["local"] / "new.bin", on_progress=p),
    "download-missing-remote": lambda m, w, p: m.download(w["store"], "remote/nope.bin", w["local"] / "new.bin"),
    "download-exists": lambda m, w, p: m.download(w["store"], "remote/src.bin", w["local"] / "exists.bin"),
    "download-overwrite": lambda m, w, p: m.download(
        w["store"], "remote/src.bin", w["local"] / "exists.bin", overwrite=True, on_progress=p
    ),
    "download-into-missing-folder": lambda m, w, p: m.download(
        w["store"], "remote/src.bin", w["local"] / "no" / "where.bin"
    ),
    "download-remote-is-folder": lambda m, w, p: m.download(w["store"], "remote", w["local"] / "new.bin"),
    "download-callback-raises": lambda m, w, p: m.download(
        w["store"], "remote/src.bin", w["local"] / "new.bin", on_progress=_raise
    ),
    "transfer": lambda m, w, p: m.transfer(w["store"], "remote/src.bin", w["store"], "remote/copy.bin", on_progress=p),
    "transfer-child": lambda m, w, p: m.transfer(
        w["store"].child("remote"), "src.bin", w["store"].child("archive/2024"), "copy.bin"
    ),
    "transfer-missing": lambda m, w, p: m.transfer(w["store"], "remote/nope.bin", w["store"], "remote/copy.bin"),
    "transfer-exists": lambda m, w, p: m.transfer(w["store"], "remote/src.bin", w["store"], "remote/exists.bin"),
    "transfer-readonly": lambda m, w, p: m.transfer(w["store"], "remote/src.bin", w["readonly"], "x.bin"),
}


def _snapshot(world: dict[str, Any]) -> dict[str, Any]:
    store: Store = world["store"]
    remote = {str(info.path): store.read_bytes(str(info.path)) for info in store.list_files("", recursive=True)}
    local = {
        str(p.relative_to(world["local"])): p.read_bytes() for p in sorted(world["local"].rglob("*")) if p.is_file()
    }
    return {"remote": remote, "local": local}


def _outcome(module: Any, tmp: Path, kind: str, name: str) -> dict[str, Any]:
    world = _world(tmp, kind)
    progress: list[int] = []
    try:
        SCENARIOS[name](module, world, progress.append)
        error = None
    except Exception as exc:
        error = (type(exc), str(exc).replace(str(tmp), "<tmp>"))
    state = _snapshot(world)
    return {"error": error, "progress": progress, **state}


@pytest.mark.parametrize("kind", ["memory", "local"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_outcome_as_upstream(name, kind, tmp_path):
    theirs = _outcome(upstream, tmp_path / "upstream", kind, name)
    mine = _outcome(ours, tmp_path / "ours", kind, name)
    assert mine == theirs


def test_parity_scenarios_do_exercise_errors_and_data(tmp_path):
    """Guard against a vacuous comparison: the scenarios produce both errors and moved bytes."""
    outcomes = [_outcome(ours, tmp_path / f"w{i}", "memory", n) for i, n in enumerate(sorted(SCENARIOS))]
    assert sum(o["error"] is not None for o in outcomes) >= 10
    assert any(o["remote"].get("remote/new.bin") == PAYLOAD for o in outcomes)
    assert any(o["local"].get("new.bin") == PAYLOAD for o in outcomes)
