"""Ctrl-C during a tree upload, to a local store and to moto S3: exit 130 right after the exit handlers.

The CLI skips the interpreter's teardown after an interrupt (it freed the
modules of s3fs/aiobotocore for 0.2-0.5 s after the last line ran): the
``atexit`` handlers still run, objects are not finalized. What must hold
still: exit 130, the summary printed, the files in flight ended, nothing
partial committed, no temp file left.
"""

from __future__ import annotations

import json
import os

import boto3
import pytest

FILE = 8 * 1024 * 1024
NAMES = [f"f{i}.bin" for i in range(6)]

PLUGIN = """
import atexit
import os
import time

from remote_store_transfer import hookimpl

_RATE = float(os.environ["RST_TEST_RATE"])
_MARKER = os.environ["RST_TEST_MARKER"]


@hookimpl
def on_chunk(context, nbytes):
    if not os.path.exists(_MARKER):
        open(_MARKER, "w").close()
    time.sleep(nbytes / _RATE)


def _at_exit():
    open(os.environ["RST_TEST_AT_EXIT"], "w").close()


class _FinalizedAtTeardown:
    def __del__(self, _open=open, _path=os.environ["RST_TEST_TEARDOWN"]):  # builtins may be gone by then
        _open(_path, "w").close()


atexit.register(_at_exit)
_probe = _FinalizedAtTeardown()  # a module global: finalized when the interpreter tears its modules down
"""


@pytest.mark.parametrize("store", ["local", "s3"])
def test_ctrl_c_exits_after_the_exit_handlers_with_nothing_partial(
    cli_stores, registry, make_plugin_dist, tmp_path, store
):
    src = cli_stores.cwd / "big"
    src.mkdir()
    for name in NAMES:
        (src / name).write_bytes(os.urandom(FILE))
    site = make_plugin_dist("rst_exit_probe", "exitprobe", PLUGIN)
    marker, at_exit, teardown = tmp_path / "marker", tmp_path / "at-exit", tmp_path / "teardown"
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "RST_TEST_AT_EXIT": str(at_exit),
        "RST_TEST_TEARDOWN": str(teardown),
    }
    proc = cli_stores.interrupted(
        "upload", "-r", "big", f"{store}:big", "--json", "--transfers", "3", marker=marker, env=env
    )
    stdout, stderr = proc.stdout, proc.stderr

    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == f"remote-store-transfer: interrupted: upload {src} -> {store}:big"
    *files, last = (json.loads(line) for line in stdout.splitlines())
    assert (last["error"], last["exit_code"]) == ("interrupted", 130)
    assert last["transferred"] < len(NAMES)
    cut = sorted(obj["path"] for obj in files if obj["status"] == "failed")
    assert cut  # the files in flight ended, as failed
    assert at_exit.exists()  # the exit handlers ran (logging, plugins' exporters...)
    assert not teardown.exists()  # the interpreter's teardown did not: that is where the time went
    if store == "local":
        left = {
            p.relative_to(registry.local_root / "big").as_posix(): p.stat().st_size
            for p in (registry.local_root / "big").rglob("*")
        }
    else:
        left = {key.rsplit("/", 1)[1]: len(registry.s3_get(key.split("/", 1)[1])) for key in registry.s3_keys()}
        client = boto3.client(
            "s3",
            endpoint_url=registry.s3_endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        assert client.list_multipart_uploads(Bucket="cli-tests").get("Uploads", []) == []
    done = sorted(obj["path"] for obj in files if obj["status"] == "transferred")
    assert left == dict.fromkeys(done, FILE)  # only whole files, only those reported: no partial, no temp file
    assert not set(cut) & set(left)
