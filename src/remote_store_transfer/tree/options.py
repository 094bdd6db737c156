"""The options of the tree calls, declared once: name, type, default, meaning, and whether they are plain data.

:class:`TreeOptions` is the one declaration. Everything else derives from it:
the signatures and the "Keyword Args" of ``upload_tree``, ``download_tree``
and ``transfer_tree`` (module functions and ``TransferManager`` methods, via
:func:`takes_tree_options`), ``Batch.options`` (:meth:`TreeOptions.plain`),
what a worker process rebuilds (:meth:`TreeOptions.from_plain`), the
:class:`~remote_store_transfer.tree.mover.Mover`, and and the CLI's folder options.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import textwrap
from collections.abc import Callable, Mapping, Sequence  # noqa: TC003 -- the dataclass and signatures read them
from concurrent.futures import Executor
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from remote_store_transfer.tree.filters import PathFilter
from remote_store_transfer.tree.plan import MAX_DELETE, UPDATES, Update, delete_limit
from remote_store_transfer.tree.runner import is_process_executor

if TYPE_CHECKING:
    from remote_store_transfer.batch import FileOutcome

__all__ = ["OPTION_NAMES", "TreeOptions", "option_docs", "takes_tree_options"]


def _about(doc: str, *, plain: bool = True) -> dict[str, Any]:
    """A :class:`TreeOptions` field's metadata: its meaning (one paragraph) and whether it is plain data.

    Args:
        plain: It is plain data, kept in ``Batch.options`` (callbacks and executors are not).
    """
    return {"doc": " ".join(doc.split()), "plain": plain}


_KINDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "bool": ("True or False", lambda v: isinstance(v, bool)),
    "int": ("an int", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
}
"""What an option of each declared type takes: its description for messages, and the check (``bool`` is
never a number). A ``T | None`` option takes ``None`` too; the other types are checked by hand below."""


@dataclass(kw_only=True)
class TreeOptions:
    """The keyword options of a tree call, checked (see ``upload_tree`` for what each does).

    Raises:
        ValueError / TypeError: An option has a bad value or type (the message names it).
    """

    include: Sequence[str] = field(
        default=(),
        metadata=_about(
            """Glob patterns on the relative path ("/"-separated): ``*`` within one segment, ``**`` across
            any number of segments (zero included), ``?`` one character, ``[abc]`` one of a set. A pattern
            without ``/`` matches the file name in any folder. Empty: every file."""
        ),
    )
    exclude: Sequence[str] = field(
        default=(),
        metadata=_about(
            """Glob patterns likewise; a file is taken when it matches some ``include`` (or ``include`` is
            empty) and no ``exclude``."""
        ),
    )
    update: Update = field(
        default="missing",
        metadata=_about(
            """``"missing"`` (default): only files absent at the destination move, so a re-run resumes.
            ``"changed"``: also replace files whose size differs or whose modification time differs (see
            ``docs/trees.md``); ``"all"``: write everything."""
        ),
    )
    checksum: bool = field(
        default=False, metadata=_about("""With ``update="changed"``, compare content digests instead of times.""")
    )
    modify_window: float = field(
        default=1.0, metadata=_about("""Seconds within which two modification times count as equal (default 1.0).""")
    )
    delete: bool = field(
        default=False,
        metadata=_about(
            """After a run in which no file failed, delete the destination files under the prefix that the
            source does not have (excluded files are left alone)."""
        ),
    )
    max_delete: int | str | None = field(
        default=MAX_DELETE,
        metadata=_about(
            """With ``delete``: the most files a run may delete, a count (``10``) or a percentage of the
            destination files the filters take (``"50%"``, rounded down; the default); ``None``: no limit. A
            run that would delete more deletes nothing and fails with ``DeleteLimitError``."""
        ),
    )
    dry_run: bool = field(
        default=False,
        metadata=_about(
            """Plan only: nothing is written or deleted; the result lists what would be transferred, skipped
            and deleted."""
        ),
    )
    max_workers: int = field(default=8, metadata=_about("""At most this many files in flight (default 8)."""))
    executor: Executor | None = field(
        default=None,
        metadata=_about(
            """A ``concurrent.futures.Executor`` to run the files on, used as given and never shut down
            (default: a thread pool of *max_workers* threads, made and shut down by the call); a
            ``ProcessPoolExecutor`` or a ``distributed.Client`` runs them in worker processes.""",
            plain=False,
        ),
    )
    on_progress: Callable[[int], None] | None = field(
        default=None,
        metadata=_about(
            """Called with the byte count of every chunk of every file (not cumulative), from the worker
            threads.""",
            plain=False,
        ),
    )
    on_file: Callable[[FileOutcome], None] | None = field(
        default=None,
        metadata=_about(
            """Called once for each file that ends (and each deletion), with its
            :class:`~remote_store_transfer.batch.FileOutcome`, from the caller's thread.""",
            plain=False,
        ),
    )
    atomic: bool = field(
        default=False, metadata=_about("""Write every file atomically (``write_atomic`` / temp file + rename).""")
    )
    retries: int = field(
        default=2,
        metadata=_about(
            """Transient errors (``BackendUnavailable``, ``ConnectionError``, ``TimeoutError``,
            ``IncompleteTransferError``) are retried up to this many times per file, with exponential
            backoff and jitter."""
        ),
    )
    fail_fast: bool = field(default=False, metadata=_about("""Start no new file after the first failure."""))
    max_bandwidth: float | None = field(
        default=None, metadata=_about("""Bytes per second over the whole tree (``None``: unlimited).""")
    )
    follow_symlinks: bool = field(
        default=False, metadata=_about("""Follow symbolic links in a local source (default: skip them).""")
    )
    filter: PathFilter = field(init=False, repr=False, compare=False)

    def _check_types(self) -> None:
        """The type of every option declared ``bool``, ``int`` or ``float`` (``| None``), from its declaration."""
        for f in fields(self):
            kind = str(f.type).removesuffix(" | None")
            if f.init and kind in _KINDS:
                value, what, check = getattr(self, f.name), *_KINDS[kind]
                optional = str(f.type).endswith(" | None")
                if not check(value) and not (optional and value is None):
                    raise TypeError(f"{f.name} must be {what}{' or None' if optional else ''}, got {value!r}")

    def __post_init__(self) -> None:
        self._check_types()
        self.filter = PathFilter(self.include, self.exclude)
        if not isinstance(self.update, str) or self.update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(map(repr, UPDATES))}, got {self.update!r}")
        if self.checksum and self.update != "changed":
            raise ValueError(f"checksum=True compares files only with update='changed' (got update={self.update!r})")
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {self.max_workers}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
        if self.max_bandwidth is not None and not self.max_bandwidth > 0:
            raise ValueError(f"max_bandwidth must be a positive number of bytes per second, got {self.max_bandwidth!r}")
        delete_limit(self.max_delete, 0)  # TypeError / ValueError naming max_delete
        if not self.modify_window >= 0:
            raise ValueError(f"modify_window must be 0 or more seconds, got {self.modify_window!r}")
        remote = is_process_executor(self.executor)
        if self.executor is not None and not remote and not isinstance(self.executor, Executor):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor or a distributed.Client, got {self.executor!r}"
            )
        if remote and self.max_bandwidth is not None:
            raise ValueError(
                "max_bandwidth caps the threads of this process; it cannot cap files that run in worker processes "
                f"({type(self.executor).__name__}): use threads, or cap each worker's network"
            )
        for name in ("on_progress", "on_file"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable, got {value!r}")

    def plain(self) -> dict[str, Any]:
        """The options as plain data, for ``Batch.options`` (no callbacks, no executor)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("plain")}
        data["include"], data["exclude"] = list(self.include), list(self.exclude)
        return data

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> TreeOptions:
        """The options :meth:`plain` gave (in a worker process), checked again; what is not plain is unset."""
        return cls(**{name: data[name] for name in OPTION_NAMES if name in data})


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TreeOptions) if f.init)
"""Every option of the tree calls, in declaration order."""


def option_docs(indent: str = "        ") -> str:
    """The "Keyword Args" section of a tree call's docstring, from the declaration."""
    lines = ["Keyword Args:"]
    for f in fields(TreeOptions):
        if f.init:
            body = textwrap.fill(f"{f.name}: {f.metadata['doc']}", 100, subsequent_indent="    ")
            lines += [f"    {line}" for line in body.splitlines()]
    return textwrap.indent("\n".join(lines), indent).lstrip()


P = ParamSpec("P")
S = TypeVar("S")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
R = TypeVar("R")


class _WithOptions(Generic[P]):
    """The decorator :func:`takes_tree_options` returns (typed for tree methods of three and four arguments)."""

    def __init__(self, options: Callable[P, TreeOptions]) -> None:
        self.options = options
        self.keyword = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
            for f in fields(TreeOptions)
            if f.init
        ]

    @overload
    def __call__(self, func: Callable[[S, A, B, C, TreeOptions], R]) -> Callable[Concatenate[S, A, B, C, P], R]: ...
    @overload
    def __call__(
        self, func: Callable[[S, A, B, C, D, TreeOptions], R]
    ) -> Callable[Concatenate[S, A, B, C, D, P], R]: ...
    def __call__(self, func: Callable[..., R]) -> Callable[..., R]:
        names, options = frozenset(OPTION_NAMES), self.options

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> R:
            chosen = {name: kwargs.pop(name) for name in names.intersection(kwargs)}
            return func(*args, **kwargs, options=options(**chosen))  # type: ignore[call-arg] # P is only known to type checkers

        signature = inspect.signature(func)
        head = [p for p in signature.parameters.values() if p.name != "options"]
        call.__signature__ = signature.replace(parameters=[*head, *self.keyword])  # type: ignore[attr-defined]
        call.__doc__ = (func.__doc__ or "").replace("{options}", option_docs())
        return call


def takes_tree_options(options: Callable[P, TreeOptions]) -> _WithOptions[P]:
    """Give a tree method ``f(self, ..., options)`` the tree options as keyword arguments.

    The result takes ``f``'s other arguments, then every option of *options*
    (:class:`TreeOptions`) by keyword, checks them (``TreeOptions(...)``) and
    calls ``f`` with the checked options. Its signature (``help()``,
    ``inspect.signature``) lists every option with its default, and
    ``{options}`` in ``f``'s docstring becomes the options' "Keyword Args"
    section. Type checkers see the same signature (``ParamSpec``).
    """
    return _WithOptions(options)
