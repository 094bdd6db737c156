"""Include / exclude glob filters on the relative paths of a tree.

``*`` matches within one path segment, ``**`` matches any number of segments
(zero included), ``?`` matches one character (never ``/``), ``[abc]`` /
``[!abc]`` one character of (or not of) a set. A pattern without ``/``
matches the file name in any folder (``*.tmp``); a pattern with ``/`` matches
the whole relative path (``logs/**/*.gz``; a leading ``/`` anchors a name
without ``/`` at the top: ``/top.txt``). A pattern ending in ``/`` names a
folder and matches everything below it (``cache/``: any folder named
``cache``; ``build/cache/``: that one).

A file is taken when it matches some ``include`` (or there is none) and no
``exclude``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["PathFilter", "compile_glob"]


def compile_glob(pattern: str) -> re.Pattern[str]:  # noqa: PLR0912 -- one branch per glob token
    """The regular expression for one glob *pattern* on a "/"-separated relative path.

    Raises:
        ValueError: An empty pattern or an unclosed ``[``.
    """
    if not pattern or pattern == "/":
        raise ValueError("empty glob pattern")
    anchored = "/" in pattern.strip("/") or pattern.startswith("/")
    body = pattern.strip("/")
    if pattern.endswith("/"):  # a folder: everything below it
        body += "/**"
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "*":
            if body.startswith("**", i):
                starts_segment = i == 0 or body[i - 1] == "/"
                j = i + 2
                if starts_segment and (j == n or body[j] == "/"):
                    if j == n:  # trailing "**": anything below (at least one more segment, or the rest)
                        out.append(".*")
                    else:  # "**/": zero or more whole segments
                        out.append("(?:[^/]*/)*")
                        j += 1
                    i = j
                    continue
                out.append("[^/]*")  # "**" inside a segment acts as "*"
                i = j
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = body.find("]", i + 2 if body.startswith(("[!", "[^"), i) else i + 1)
            if end == -1:
                raise ValueError(f"unclosed '[' in glob pattern {pattern!r}")
            inner = body[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            if negate:
                inner = inner[1:]
            inner = inner.replace("\\", "\\\\").replace("]", "\\]")
            out.append(f"[^/{inner}]" if negate else f"[{inner}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    regex = "".join(out)
    return re.compile(regex if anchored else f"(?:.*/)?{regex}", re.DOTALL)


def _compiled(name: str, patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(compile_glob(p) for p in patterns)
    except ValueError as exc:  # the option too: "empty glob pattern" alone does not say where
        raise ValueError(f"{name}: {exc}") from None


class PathFilter:
    """Which relative paths a tree call takes: some *include* (or none given) and no *exclude*.

    Args:
        include: Glob patterns (see the module docs); empty takes every path.
        exclude: Glob patterns; a path matching any of them is left out.

    Raises:
        ValueError: A pattern is empty or malformed (the message names the option and the pattern).
        TypeError: *include* or *exclude* is not a sequence of ``str`` (``None``, one string, a pattern of
            another type: the message names the option). One string is refused, not taken as one pattern:
            ``include="*.txt"`` is the common slip for ``include=["*.txt"]``, and a ``str`` is a sequence too.
    """

    __slots__ = ("_exclude", "_include", "exclude", "include")

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        for name, value in (("include", include), ("exclude", exclude)):
            if isinstance(value, str | bytes):
                raise TypeError(f"{name} must be a sequence of glob patterns, not one string: {value!r}")
            if not isinstance(value, Sequence):
                raise TypeError(f"{name} must be a sequence of glob patterns (a list of str), got {value!r}")
            for i, pattern in enumerate(value):
                if not isinstance(pattern, str):
                    raise TypeError(f"{name}[{i}] must be a glob pattern (a str), got {pattern!r}")
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._include = _compiled("include", self.include)
        self._exclude = _compiled("exclude", self.exclude)

    def __bool__(self) -> bool:
        """``True`` when some pattern is set (every path is not simply taken)."""
        return bool(self._include or self._exclude)

    def __call__(self, path: str) -> bool:
        """``True`` when the relative *path* is taken."""
        if self._include and not any(p.fullmatch(path) for p in self._include):
            return False
        return not any(p.fullmatch(path) for p in self._exclude)

    def __repr__(self) -> str:
        return f"PathFilter(include={list(self.include)!r}, exclude={list(self.exclude)!r})"
