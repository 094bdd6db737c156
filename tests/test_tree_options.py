"""The tree options are declared once (``TreeOptions``): the API, the CLI and the docs' tables follow it.

Nothing here lists the options by hand: each check compares a place that shows
the options with the declaration, so adding an option to ``TreeOptions`` alone
fails until the CLI says how it shows (a flag, or why it has none) and both
pages' tables name it.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

import remote_store_transfer
from remote_store_transfer import TransferManager
from remote_store_transfer.cli import cli
from remote_store_transfer.cli.tree import DASK, FLAGS, Flag
from remote_store_transfer.tree.options import OPTION_NAMES, TreeOptions

DOCS = Path(__file__).parent.parent / "docs"

TREE_CALLS = [
    remote_store_transfer.upload_tree,
    remote_store_transfer.download_tree,
    remote_store_transfer.transfer_tree,
    TransferManager().upload_tree,
    TransferManager().download_tree,
    TransferManager().transfer_tree,
]


def _keyword_only(function: object) -> list[str]:
    parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _table_names(page: str, header: str, first: str) -> list[str]:
    """The backticked names in the first column of the table of docs/*page* with row *header* whose first
    row starts with *first*."""
    text = (DOCS / page).read_text(encoding="utf-8")
    match = re.search(re.escape(header) + r"\n\|[- |]+\|\n" + re.escape(first), text)
    assert match, f"docs/{page}: no table {header!r} starting with {first!r}"
    start = match.start()
    names: list[str] = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        names += re.findall(r"`([^`]+)`", re.split(r"(?<!\\)\|", line)[1])
    return names


@pytest.mark.parametrize(
    "call", TREE_CALLS, ids=lambda c: f"{type(getattr(c, '__self__', None)).__name__}.{c.__name__}"
)
def test_every_tree_call_takes_exactly_the_declared_options_with_their_defaults(call) -> None:
    assert _keyword_only(call) == list(OPTION_NAMES)
    parameters = inspect.signature(call).parameters
    for f in fields(TreeOptions):
        if f.init:
            assert parameters[f.name].default == f.default, f.name
            assert f"{f.name}: " in (call.__doc__ or ""), f"{call.__name__}'s docstring lacks {f.name}"


def test_a_tree_call_passes_every_option_through_and_refuses_an_unknown_one(tmp_path, memory_store) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "b.log").write_text("b")
    seen = []

    result = remote_store_transfer.upload_tree(
        memory_store, tmp_path / "src", "p", include=["*.txt"], max_workers=1, on_file=seen.append, dry_run=True
    )

    assert [o.path for o in seen] == ["a.txt"] and result.dry_run
    assert not memory_store.exists("p/a.txt")
    with pytest.raises(TypeError, match="nonsense"):
        remote_store_transfer.upload_tree(memory_store, tmp_path / "src", "p", nonsense=1)  # type: ignore[call-arg]


def test_the_cli_says_for_every_option_how_it_shows() -> None:
    assert set(FLAGS) == set(OPTION_NAMES)
    for name, how in FLAGS.items():
        assert isinstance(how, Flag) or how, f"{name}: neither a flag nor a reason"


@pytest.mark.parametrize("command", ["sync", "upload", "download", "copy"])
def test_every_flag_of_the_declaration_is_in_the_commands_help(command: str) -> None:
    text = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
    flags = [how.flag for how in FLAGS.values() if isinstance(how, Flag) and (command == "sync" or not how.sync_only)]
    for flag in [*flags, DASK.flag]:
        assert flag in text, f"{command} --help lacks {flag}"


def test_the_trees_page_table_names_the_declared_options_in_order() -> None:
    table = _table_names("trees.md", "| option | default | what it does |", "| `include`")
    assert table == list(OPTION_NAMES)


def test_the_cli_page_table_names_every_folder_flag() -> None:
    documented = {name.split()[0] for name in _table_names("cli.md", "| option | effect |", "| `--include")}
    flags = {how.flag for how in FLAGS.values() if isinstance(how, Flag)} | {DASK.flag}
    assert flags <= documented, f"docs/cli.md's folder options lack {sorted(flags - documented)}"


def test_plain_options_travel_and_come_back_the_same() -> None:
    options = TreeOptions(include=["*.txt"], update="changed", checksum=True, max_workers=3, retries=0, atomic=True)

    plain = options.plain()

    assert set(plain) == {f.name for f in fields(TreeOptions) if f.metadata.get("plain")}
    assert not {"executor", "on_progress", "on_file"} & set(plain)
    again = TreeOptions.from_plain(plain)
    assert again.plain() == plain
    assert (again.atomic, again.retries, again.max_workers) == (True, 0, 3)
