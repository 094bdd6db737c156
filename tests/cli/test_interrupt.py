"""Ctrl-C (SIGINT) in the middle of a download: exit 130, and with --atomic no partial file."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

SIZE = 64 * 1024 * 1024


def _default_sigint() -> None:
    # A shell may start background jobs with SIGINT ignored, and Python then keeps ignoring it;
    # the CLI must get Ctrl-C as a terminal user's shell would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(path, proc) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no chunk moved within 60 s"
        time.sleep(0.02)


@pytest.mark.parametrize("atomic", [True, False])
def test_ctrl_c_during_a_download(cli_stores, registry, plugin_env, tmp_path, atomic):
    with open(registry.local_root / "big.bin", "wb") as fh:
        fh.truncate(SIZE)
    marker = tmp_path / "first-chunk"
    env = cli_stores.environment({**plugin_env, "RST_TEST_RATE": str(8 * 1024 * 1024), "RST_TEST_MARKER": str(marker)})
    args = ["download", "local:big.bin", "out.bin", "--json"] + (["--atomic"] if atomic else [])
    proc = subprocess.Popen(
        cli_stores.command(*args),
        cwd=cli_stores.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 -- it only resets SIGINT, before exec
    )
    try:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()

    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == (
        f"remote-store-transfer: interrupted: download local:big.bin -> {cli_stores.cwd / 'out.bin'}"
    )
    result = json.loads(stdout)
    assert result["ok"] is False
    assert result["error"] == "interrupted"
    assert result["exit_code"] == 130
    assert 0 < result["bytes"] < SIZE
    left = sorted(p.name for p in cli_stores.cwd.iterdir())
    if atomic:
        assert left == []  # neither out.bin nor its temp file
    else:
        assert left == ["out.bin"]  # without --atomic the partial file stays, as documented
        assert (cli_stores.cwd / "out.bin").stat().st_size <= result["bytes"]
