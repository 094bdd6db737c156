"""The folder commands: ``upload -r``, ``download -r``, ``copy -r`` and ``sync``.

They call ``upload_tree`` / ``download_tree`` / ``transfer_tree`` with the
options of the command line (:func:`tree_options`, :class:`TreeArgs`) in the
command's :class:`~remote_store_transfer.cli.session.Session`, draw the live
display on a terminal (:mod:`remote_store_transfer.cli.tree_progress`), and
report the result with :func:`~remote_store_transfer.cli.report.report_tree`:
the dry-run plan or one JSON object per file, the summary line (or object) on
stdout, one line per failed file on stderr, and the exit code.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import click
from click.core import ParameterSource

from remote_store_transfer import download_tree, transfer_tree, upload_tree
from remote_store_transfer.cli.report import file_json, plan_line, report_tree
from remote_store_transfer.cli.session import Options, Session, destination_error
from remote_store_transfer.cli.stores import Location, atomic_writes
from remote_store_transfer.cli.tree_progress import SourceCounter, TreeProgress
from remote_store_transfer.plugin import hookimpl
from remote_store_transfer.tree.filters import compile_glob
from remote_store_transfer.tree.options import OPTION_NAMES, TreeOptions
from remote_store_transfer.tree.plan import delete_limit

if TYPE_CHECKING:
    from remote_store import Store

    from remote_store_transfer.batch import Batch, FileOutcome, TreeResult

__all__ = [
    "DASK",
    "FLAGS",
    "RATE",
    "BatchRecorder",
    "Flag",
    "RateParam",
    "TreeArgs",
    "parse_rate",
    "reject_tree_options",
    "run_tree_command",
    "tree_options",
]

Command = Literal["upload", "download", "copy", "sync"]

F = Callable[..., Any]

# -- --bwlimit

_RATE = re.compile(r"^(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>[a-z]*)(?:/s)?$")
_UNITS: dict[str, int] = {"": 1, "b": 1} | {
    f"{prefix}{suffix}": 1024**power
    for power, prefix in enumerate("kmgt", start=1)
    for suffix in ("", "b", "ib")  # binary units whatever the spelling: 1K = 1KB = 1KiB = 1024 bytes
}


def parse_rate(text: str) -> float:
    """Bytes per second of a ``--bwlimit`` value: ``10M``, ``512K``, ``1.5G``, ``2T``, ``1048576``.

    The units are binary (``1K`` is 1024 bytes) and case-insensitive; ``KiB``,
    ``KB`` and a trailing ``/s`` are accepted too.

    Raises:
        ValueError: Not a rate, or not more than 0.
    """
    match = _RATE.match(text.strip().lower().replace(" ", ""))
    if match is None or match["unit"] not in _UNITS:
        raise ValueError(f"{text!r} is not a rate: give bytes per second, such as 10M, 512K, 1.5G or 1048576")
    rate = float(match["number"]) * _UNITS[match["unit"]]
    if not rate > 0:
        raise ValueError(f"{text!r}: the rate must be more than 0 bytes per second")
    return rate


class RateParam(click.ParamType[float]):
    """The click type of ``--bwlimit``: :func:`parse_rate` (a bad value is a usage error)."""

    name = "rate"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """Bytes per second (a number passes through)."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return parse_rate(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


RATE = RateParam()

# -- the options


def _check_globs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        try:
            compile_glob(pattern)
        except ValueError as exc:
            raise click.BadParameter(f"{pattern!r}: {exc}", ctx, param) from exc
    return value


def _check_max_delete(ctx: click.Context, param: click.Parameter, value: str) -> int | str | None:
    """``--max-delete``: a count (``10``), a percentage (``50%``) or ``none`` (no limit: ``None``)."""
    text = str(value).strip()
    if text.lower() == "none":
        return None
    limit: int | str = int(text) if text.isdigit() else text
    try:
        delete_limit(limit, 0)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(f"{value!r}: give a count (10), a percentage (50%) or none", ctx, param) from exc
    return limit


@dataclass(frozen=True)
class Flag:
    """How one tree option shows on the command line: a click option whose parameter is the option's name.

    Attributes:
        flag: The flag (``--transfers``).
        help: Its help, without the ``-r:`` that folder options of ``upload`` / ``download`` / ``copy`` get.
        sync_only: Only ``sync`` has it.
        click: The rest of the ``click.option`` arguments (type, default, metavar...).
    """

    flag: str
    help: str
    sync_only: bool = False
    click: Mapping[str, Any] = field(default_factory=dict)


FLAGS: Mapping[str, Flag | str] = {
    "include": Flag(
        "--include",
        "Take only files matching GLOB (repeatable; * ** ? [abc]).",
        click={"multiple": True, "metavar": "GLOB", "callback": _check_globs},
    ),
    "exclude": Flag(
        "--exclude",
        "Leave out files matching GLOB (repeatable).",
        click={"multiple": True, "metavar": "GLOB", "callback": _check_globs},
    ),
    "update": Flag(
        "--update",
        "Which files to write: absent ones (missing), also those whose size or time differ (changed), or all. "
        "Default: {update_default}.",
        click={"type": click.Choice(["missing", "changed", "all"]), "default": None},
    ),
    "checksum": Flag(
        "--checksum",
        "Compare same-size files by content digest instead of time (implies --update changed).",
        click={"is_flag": True},
    ),
    "modify_window": "not on the command line: the library's default (1 s) serves every store it reaches",
    "delete": Flag(
        "--delete",
        "Mirror: delete destination files the source lacks, after a run without failures.",
        sync_only=True,
        click={"is_flag": True},
    ),
    "max_delete": Flag(
        "--max-delete",
        "With --delete: delete nothing, and fail, when more than N files (or P% of the destination files) would "
        "go; none: no limit.",
        sync_only=True,
        click={
            "default": str(TreeOptions.__dataclass_fields__["max_delete"].default),
            "show_default": True,
            "metavar": "N|P%|none",
            "callback": _check_max_delete,
        },
    ),
    "dry_run": Flag(
        "--dry-run", "Print what would be transferred, skipped and deleted; change nothing.", click={"is_flag": True}
    ),
    "max_workers": Flag(
        "--transfers",
        "Files in flight at once.",
        click={"type": click.IntRange(min=1), "default": 8, "show_default": True, "metavar": "N"},
    ),
    "executor": "--dask ADDRESS: the files run on that Dask cluster",
    "on_progress": "the live display on a terminal",
    "on_file": "the dry-run plan, the --json lines and the live display",
    "atomic": "--atomic / --no-atomic, which every command has",
    "retries": Flag(
        "--retries",
        "Tries again after a transient error, per file.",
        click={"type": click.IntRange(min=0), "default": 2, "show_default": True, "metavar": "N"},
    ),
    "fail_fast": Flag("--fail-fast", "Start no new file after a failure.", click={"is_flag": True}),
    "max_bandwidth": Flag(
        "--bwlimit",
        "Bytes per second over all files: 10M, 512K, 1.5G, 1048576 (binary units).",
        click={"type": RATE, "default": None, "metavar": "RATE"},
    ),
    "follow_symlinks": Flag(
        "--follow-symlinks", "Follow symbolic links in a local source (default: skip them).", click={"is_flag": True}
    ),
}
"""Every tree option (:data:`~remote_store_transfer.tree.options.OPTION_NAMES`): its flag, or why it has none."""

DASK = Flag(
    "--dask",
    "Run the files on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786); needs the [dask] extra.",
    click={"metavar": "ADDRESS", "default": None},
)
"""``--dask``: the CLI's way to give an ``executor``."""


def _flags(*, sync: bool) -> list[tuple[str, Flag]]:
    """The ``(parameter name, flag)`` pairs of a folder command, in the declaration's order, ``--dask`` last."""
    chosen: list[tuple[str, Flag]] = []
    for name in OPTION_NAMES:
        flag = FLAGS.get(name)  # a missing one fails tests/test_tree_options.py, not the command line
        if isinstance(flag, Flag) and (sync or not flag.sync_only):
            chosen.append((name, flag))
    return [*chosen, ("dask", DASK)]


def tree_options(*, sync: bool) -> Callable[[F], F]:
    """The folder options; for ``upload``/``download``/``copy`` also ``-r``, for ``sync`` also ``--delete``."""
    pre = "" if sync else "-r: "
    options: list[Callable[[F], F]] = []
    if not sync:
        options.append(
            click.option(
                "-r", "--recursive", is_flag=True, help="Copy every file under a folder or prefix (see Folders below)."
            )
        )
    for name, flag in _flags(sync=sync):
        text = flag.help.format(update_default="changed" if sync else "missing")
        options.append(click.option(flag.flag, name, help=f"{'' if flag.sync_only else pre}{text}", **flag.click))

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def reject_tree_options(command: str) -> None:
    """A usage error when a folder option was given without ``-r``."""
    ctx = click.get_current_context()
    given = [flag.flag for name, flag in _flags(sync=False) if _given(ctx, name)]
    if given:
        raise click.UsageError(f"{command}: {', '.join(given)}: for folders only (add -r)", ctx)


@dataclass(frozen=True)
class TreeArgs:
    """The folder options of one command, as click parsed them.

    Attributes:
        options: The tree options given on the command line, by their names (``max_workers``...).
        dask: ``--dask``: the scheduler's address, or ``None``.
    """

    options: Mapping[str, Any]
    dask: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, atomic: bool) -> TreeArgs:
        """From the command function's keyword arguments (other keys are ignored)."""
        options = {name: params[name] for name in OPTION_NAMES if name in params}
        options["include"], options["exclude"] = tuple(options.get("include", ())), tuple(options.get("exclude", ()))
        return cls({**options, "atomic": atomic}, params.get("dask"))

    @property
    def dry_run(self) -> bool:
        """``--dry-run``."""
        return bool(self.options.get("dry_run", False))

    def resolved_update(self, command: Command) -> str:
        """``--update``, or the command's default: ``changed`` for ``sync`` or with ``--checksum``, else ``missing``."""
        update, checksum = self.options.get("update"), self.options.get("checksum", False)
        if update is not None:
            if checksum and update != "changed":
                raise click.UsageError(f"--checksum compares files only with --update changed, not {update}")
            return str(update)
        return "changed" if command == "sync" or checksum else "missing"


# -- the plugin that keeps the result


class BatchRecorder:
    """Keeps the :class:`TreeResult` that ``post_batch`` sees: the summary after an interrupt or an error too."""

    def __init__(self) -> None:
        self.batch: Batch | None = None
        self.result: TreeResult | None = None

    @hookimpl(tryfirst=True)
    def pre_batch(self, batch: Batch) -> None:
        """Remember the first tree call of the command."""
        if self.batch is None:
            self.batch = batch

    @hookimpl
    def post_batch(self, batch: Batch, result: TreeResult) -> None:
        """Remember its result."""
        if batch is self.batch:
            self.result = result


# -- output


class _OnFile:
    """The ``on_file`` callback: counts files for the display, prints JSON lines, keeps a dry run's plan."""

    def __init__(self, *, as_json: bool, dry_run: bool, progress: TreeProgress | None, show_skips: bool = True) -> None:
        self.as_json = as_json
        self.show_skips = show_skips
        self.dry_run = dry_run
        self.progress = progress
        self.plan: list[FileOutcome] = []

    def __call__(self, outcome: FileOutcome) -> None:
        if self.progress is not None:
            self.progress.file_done(outcome)
        if self.dry_run:
            self.plan.append(outcome)
        elif self.as_json:
            click.echo(file_json(outcome))

    def print_plan(self) -> None:
        """The dry run's plan, sorted by path, deletions last (failures go to stderr with the others).

        The plain lines are the changes only; the skips too with *show_skips* (``-v``). JSON holds every file.
        """
        for outcome in sorted(self.plan, key=lambda o: (o.status == "deleted", o.path)):
            if self.as_json:
                click.echo(file_json(outcome))
            elif outcome.status != "failed" and (outcome.status != "skipped" or self.show_skips):
                click.echo(plan_line(outcome))


# -- the command


def _root_name(location: Location) -> str:
    path = os.path.abspath(location.path) if location.is_local else location.path
    return os.path.basename(path.rstrip("/" + os.sep)) or (location.store or path)


def _under(root: str, path: str, *, local: bool) -> str:
    """The file *path* under the destination *root* (the root itself for ``""``)."""
    if not path:
        return root
    return os.path.join(root, path) if local else f"{root.rstrip('/')}/{path}"


def _check_folders(command: str, src: Location, dst: Location) -> None:
    """Usage errors for a local source or destination that exists but is not a folder."""
    for location, role in ((src, "source"), (dst, "destination")):
        if location.is_local and os.path.exists(location.path) and not os.path.isdir(location.path):
            raise click.UsageError(f"{command}: the {role} {location.text!r} is not a folder")


def run_tree_command(
    command: Command, src: Location, dst: Location, args: TreeArgs, opts: Options, *, verbosity: int = 0
) -> int:
    """Run one folder command; print the plan / JSON lines, the summary and the failures; return the exit code.

    A dry run's plan lists the skipped files only with *verbosity* (``-v``).

    Raises:
        click.UsageError: Both ends are local paths, a local end is not a folder, or options conflict.
        StoreLookupError: A store name cannot be resolved (the caller reports it).
    """
    if src.is_local and dst.is_local:
        raise click.UsageError(f"{command}: one end must be NAME:PREFIX, got two local paths")
    update = args.resolved_update(command)
    _check_folders(command, src, dst)
    source = os.path.abspath(src.path) if src.is_local else src.text
    destination = os.path.abspath(dst.path) if dst.is_local else dst.text
    with Session(opts) as session:
        draw = session.draws and not args.dry_run
        progress = TreeProgress(session.console, f"{command} {_root_name(src)}") if draw else None
        # a local source is counted ahead (the tree's listing is lazy): the bar gets its total and an ETA early
        counter = _source_counter(progress, src, args)
        recorder = BatchRecorder()
        on_file = _OnFile(as_json=opts.as_json, dry_run=args.dry_run, progress=progress, show_skips=verbosity > 0)
        options: dict[str, Any] = {**args.options, "update": update, "on_file": on_file}
        client = _dask_client(args)
        if client is not None:
            options["executor"] = client
        try:
            src_store = None if src.is_local else session.store(src)
            dst_store = None if dst.is_local else session.store(dst)
            if dst_store is not None:
                options["atomic"] = atomic_writes(dst_store, dst.store or "", args.options["atomic"])
            call = _tree_call(src, dst, src_store, dst_store, options)
            result, error = _run(session, call, recorder, progress, counter)
        finally:
            if client is not None:
                client.close()

    def captured(failure: BaseException, path: str = "") -> BaseException:
        """*failure* of the file *path* (of the tree: ``""``) as the command reports it."""
        return session.captured(
            destination_error(
                failure,
                _under(destination, path, local=dst.is_local),
                local=destination if dst.is_local else None,
                folder=True,
                # a store's NotFound when the source is a local folder: no such bucket (the files were just read)
                not_found=src.is_local and not dst.is_local,
            )
        )

    if result is None:
        result = recorder.result
    if result is not None:
        for path, failure in list(result.failed.items()):
            result.failed[path] = captured(failure, path)
    if error is not None and not isinstance(error, KeyboardInterrupt):
        error = captured(error)
    if args.dry_run:
        on_file.print_plan()
    return report_tree(
        command, source, destination, result, error, quiet=opts.quiet, as_json=opts.as_json, debug=opts.debug
    )


def _source_counter(progress: TreeProgress | None, src: Location, args: TreeArgs) -> SourceCounter | None:
    """A counter of a local source for the display; none for a store (a second listing costs requests)."""
    if progress is None or not src.is_local:
        return None
    options = args.options
    return SourceCounter(
        progress,
        src.path,
        options.get("include", ()),
        options.get("exclude", ()),
        follow_symlinks=bool(options.get("follow_symlinks", False)),
    )


def _dask_client(args: TreeArgs) -> Any:
    """A ``distributed.Client`` connected to ``--dask ADDRESS``, or ``None`` without the option.

    Raises:
        click.UsageError: The [dask] extra is not installed, ``--bwlimit`` was given too, or
            the scheduler cannot be reached (within 10 s).
    """
    if args.dask is None:
        return None
    if args.options.get("max_bandwidth") is not None:
        raise click.UsageError("--bwlimit caps the threads of this process; it cannot be used with --dask")
    try:
        distributed: Any = importlib.import_module("distributed")  # an optional extra
    except ImportError as exc:
        raise click.UsageError(
            "--dask needs Dask: pip install 'remote-store-transfer[dask]' (from a clone: pip install '.[dask]')"
        ) from exc
    try:
        return distributed.Client(args.dask, timeout=10)
    except (OSError, TimeoutError) as exc:
        raise click.UsageError(f"--dask {args.dask}: cannot reach the Dask scheduler: {exc}") from exc


def _tree_call(
    src: Location, dst: Location, src_store: Store | None, dst_store: Store | None, options: dict[str, Any]
) -> Callable[[], TreeResult]:
    if src_store is None:
        assert dst_store is not None
        return lambda: upload_tree(dst_store, src.path, dst.path, **options)
    if dst_store is None:
        return lambda: download_tree(src_store, src.path, dst.path, **options)
    return lambda: transfer_tree(src_store, src.path, dst_store, dst.path, **options)


def _run(
    session: Session,
    call: Callable[[], TreeResult],
    recorder: BatchRecorder,
    progress: TreeProgress | None,
    counter: SourceCounter | None = None,
) -> tuple[TreeResult | None, BaseException | None]:
    """*call* with the recorder (and the display) registered; ``(result, None)`` or ``(None, the error)``.

    Ctrl-C is caught too: the caller reports it, with its exit code.
    """
    result: TreeResult | None = None
    error: BaseException | None = None
    try:
        with session.registered(recorder, progress):
            if counter is not None:
                counter.start()
            result = call()
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- reported by the caller, with its exit code
        error = exc
    finally:
        if counter is not None:  # the tree ended: no more counting
            counter.stop()
        if progress is not None:
            progress.stop(interrupted=isinstance(error, KeyboardInterrupt))
    return result, error
