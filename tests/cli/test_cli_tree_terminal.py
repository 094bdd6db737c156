"""The folder display in a real terminal: ``upload -r`` runs in a tmux pane, the test reads the screen."""

from __future__ import annotations

import re

FILES = 6
SIZE = 2 * 1024 * 1024  # per file: 12 MiB in all
RATE = "6M"  # --bwlimit: the tree takes about two seconds
OVERALL = re.compile(r"upload src\s+━+.*?(\d+)%\s+([\d.]+)/12\.0 MiB\s+\S+ \S+/s\s+\S+\s+(\d+)/6 files")
FILE_ROW = re.compile(r"^\s+(file-\d\.bin)\s+(\d+)%\s+[\d.]+/2\.0 MiB\s*$", re.MULTILINE)


def test_upload_r_draws_the_overall_bar_and_one_line_per_file(cli_stores, registry, terminal):
    src = cli_stores.cwd / "src"
    src.mkdir()
    for i in range(1, FILES + 1):
        (src / f"file-{i}.bin").write_bytes(bytes([i]) * SIZE)
    midway: list[str] = []  # screens with the overall bar part-way and file rows drawn

    def watch(screen: str) -> None:
        overall = OVERALL.search(screen)
        if overall and 0 < int(overall[1]) < 100 and len(FILE_ROW.findall(screen)) >= 2:
            midway.append(screen)

    code, screen = terminal(cli_stores, "upload", "-r", "src", "local:tree", "--bwlimit", RATE, watch=watch)
    assert code == "0", screen
    assert midway, f"no screen with the overall bar part-way and file rows; last screen:\n{screen}"
    sample = midway[len(midway) // 2]
    rows = FILE_ROW.findall(sample)
    assert len({name for name, _ in rows}) == len(rows)  # one line per file in flight
    assert all(0 <= int(percent) <= 100 for _, percent in rows)
    overall = OVERALL.search(sample)
    assert overall is not None
    assert 0 <= int(overall[3]) < FILES  # files done so far, of the six the listing found

    final = OVERALL.search(screen)
    assert final is not None, screen
    assert (final[1], final[2], final[3]) == ("100", "12.0", "6")
    assert FILE_ROW.findall(screen) == []  # the file rows are gone at the end
    assert f"upload {src} -> local:tree: 6 transferred, 0 skipped, 0 failed, 0 deleted, 12.0 MiB in " in screen
    assert sorted(p.name for p in (registry.local_root / "tree").iterdir()) == [f"file-{i}.bin" for i in range(1, 7)]


MANY = 40
COUNTED = re.compile(r"upload many\s+━+.*?(\d+)%\s+\S+/1\.2 MiB\s+\S+ \S+/s\s+(\S+)\s+(\d+)/40 files")


def test_a_local_source_is_counted_ahead_so_the_bar_has_a_total_and_an_eta(cli_stores, registry, terminal):
    # Few workers, many files: the tree's own listing is read only as workers free up, so it ends
    # with the last file; the total and the time left mid-way come from the counter.
    src = cli_stores.cwd / "many"
    src.mkdir()
    for i in range(MANY):
        (src / f"f{i:02d}.bin").write_bytes(bytes([i]) * 32 * 1024)
    midway: list[tuple[int, str, int]] = []

    def watch(screen: str) -> None:
        found = COUNTED.search(screen)
        if found and 0 < int(found[1]) < 100 and int(found[3]) < MANY - 4:
            midway.append((int(found[1]), found[2], int(found[3])))

    code, screen = terminal(
        cli_stores, "upload", "-r", "many", "local:many", "--transfers", "1", "--bwlimit", "512K", watch=watch
    )
    assert code == "0", screen
    assert midway, f"no screen with a total of 40 files part-way; last screen:\n{screen}"
    assert any(eta != "-:--:--" for _, eta, _ in midway), midway  # a time left, not only the unknown mark
    assert "40 transferred" in screen
