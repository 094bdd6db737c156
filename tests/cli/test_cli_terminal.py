"""The progress bar in a real terminal: the CLI runs in a tmux pane, the test reads the screen."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SIZE = 96 * 1024 * 1024
RATE = 48 * 1024 * 1024  # bytes per second: the upload takes about two seconds
BAR = re.compile(r"upload big\.bin\s+━+.*?(\d+)%\s+[\d.]+/96\.0 MiB")


def tmux(socket: Path, *args: str) -> str:
    tmux_bin = shutil.which("tmux")
    assert tmux_bin, "tmux is needed for this test (.ci/run installs it)"
    result = subprocess.run([tmux_bin, "-u", "-S", str(socket), *args], capture_output=True, text=True, check=True)
    return result.stdout


def test_progress_bar_is_drawn_and_ends_at_100_percent(cli_stores, registry, plugin_env):
    big = cli_stores.cwd / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(SIZE)
    env = cli_stores.environment({**plugin_env, "RST_TEST_RATE": str(RATE), "TERM": "xterm-256color"})
    done = cli_stores.cwd / "exit-code"
    script = cli_stores.cwd / "run.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if k.isidentifier())
    command = shlex.join(cli_stores.command("upload", "big.bin", "local:big.bin"))
    script.write_text(f"{exports}cd {shlex.quote(str(cli_stores.cwd))}\n{command}\necho $? > {done}\nsleep 600\n")

    # A short socket path (sockets are limited to about 100 characters).
    with tempfile.TemporaryDirectory(prefix="rst-tmux-", dir="/tmp") as sockdir:
        socket = Path(sockdir) / "s"
        run = f"bash {shlex.quote(str(script))}"
        tmux(socket, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "30", run)
        try:
            midway: list[int] = []
            deadline = time.monotonic() + 120
            while not done.exists():
                assert time.monotonic() < deadline, tmux(socket, "capture-pane", "-p", "-J")
                match = BAR.search(tmux(socket, "capture-pane", "-p", "-J"))
                if match and 0 < int(match[1]) < 100:
                    midway.append(int(match[1]))
                time.sleep(0.05)
            screen = tmux(socket, "capture-pane", "-p", "-J")
        finally:
            tmux(socket, "kill-server")

    assert done.read_text().strip() == "0", screen
    assert midway, f"no bar between 0 and 100 % was seen; last screen:\n{screen}"
    assert midway == sorted(midway)
    final = BAR.search(screen)
    assert final is not None, screen
    assert final[1] == "100"
    assert "96.0/96.0 MiB" in screen
    assert f"upload {big} -> local:big.bin: 96.0 MiB in " in screen
    assert (registry.local_root / "big.bin").stat().st_size == SIZE
