"""The progress bar in a real terminal: the CLI runs in a tmux pane, the test reads the screen."""

from __future__ import annotations

import re

SIZE = 96 * 1024 * 1024
RATE = 48 * 1024 * 1024  # bytes per second: the upload takes about two seconds
BAR = re.compile(r"upload big\.bin\s+━+.*?(\d+)%\s+[\d.]+/96\.0 MiB")


def test_progress_bar_is_drawn_and_ends_at_100_percent(cli_stores, registry, plugin_env, terminal):
    big = cli_stores.cwd / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(SIZE)
    midway: list[int] = []

    def watch(screen: str) -> None:
        match = BAR.search(screen)
        if match and 0 < int(match[1]) < 100:
            midway.append(int(match[1]))

    code, screen = terminal(
        cli_stores, "upload", "big.bin", "local:big.bin", env={**plugin_env, "RST_TEST_RATE": str(RATE)}, watch=watch
    )
    assert code == "0", screen
    assert midway, f"no bar between 0 and 100 % was seen; last screen:\n{screen}"
    assert midway == sorted(midway)
    final = BAR.search(screen)
    assert final is not None, screen
    assert final[1] == "100"
    assert "96.0/96.0 MiB" in screen
    assert f"upload {big} -> local:big.bin: 96.0 MiB in " in screen
    assert (registry.local_root / "big.bin").stat().st_size == SIZE


def test_an_empty_file_ends_at_100_percent_in_a_terminal(cli_stores, registry, terminal):
    (cli_stores.cwd / "empty.bin").write_bytes(b"")
    code, screen = terminal(cli_stores, "upload", "empty.bin", "local:empty.bin")
    assert code == "0", screen
    assert re.search(r"upload empty\.bin\s+━+\s+100%\s+0/0 bytes", screen), screen
    assert (registry.local_root / "empty.bin").read_bytes() == b""
