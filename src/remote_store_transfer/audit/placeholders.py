"""``{host}`` and ``{pid}`` in an audit ``path``, store ``prefix`` or anchor: one chain per writing process."""

from __future__ import annotations

import os
import re
import socket
import string

__all__ = ["PLACEHOLDERS", "expand", "host_label", "is_template", "placeholders_in"]


PLACEHOLDERS = ("host", "pid")
"""The placeholders a ``path`` or a store ``prefix`` may hold: ``{host}`` and ``{pid}`` of the writing process."""


def host_label() -> str:
    """This host's name, with anything but letters, digits, ``.`` and ``-`` made ``_`` (safe in a path or key)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname()) or "host"


def is_template(text: str, what: str) -> bool:
    """Check the placeholders of *text* (the *what* option); ``True`` when it must be expanded.

    Text without ``{`` or ``}`` is taken as it is. Otherwise it is a template:
    ``{host}`` and ``{pid}`` are expanded, ``{{`` and ``}}`` stand for a brace.

    Raises:
        ValueError: An unknown placeholder, a format spec, or a lone brace.
    """
    if "{" not in text and "}" not in text:
        return False
    hint = "the placeholders are {host} and {pid} (write {{ or }} for a literal brace)"
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text)]
    except ValueError as exc:
        raise ValueError(f"audit {what} {text!r}: {exc}; {hint}") from None
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(f"audit {what} {text!r}: unknown placeholder {{{name}}}; {hint}")
        if spec or conversion:
            raise ValueError(f"audit {what} {text!r}: placeholder {{{name}}} takes no format spec or conversion")
    return True


def expand(text: str) -> str:
    """*text* (a checked template) with ``{host}`` and ``{pid}`` of this process."""
    return text.format(host=host_label(), pid=os.getpid())


def placeholders_in(text: str) -> set[str]:
    """The placeholders *text* (a checked template, or plain text) uses."""
    if "{" not in text and "}" not in text:
        return set()
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
