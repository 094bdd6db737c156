"""Calling the ending hooks: one helper, one set of rules for ``post_transfer``, ``post_batch`` and ``post_delete``.

Those hooks are not called through pluggy's loop: each implementation is
called on its own (:func:`call_each`), so that one failing plugin never keeps
another from running, and the first error wins. The plugin manager refuses
wrapper implementations of them (:data:`NO_WRAPPERS`) at registration, since
a wrapper would never run. The streaming core (per call) and the tree engine
(per tree, per deletion) share this module; it needs no plugin manager.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pluggy
    from pluggy import HookCaller

    Impl = tuple[str, Callable[..., object], tuple[str, ...]]
    """``(plugin name, function, argument names)`` of one hook implementation."""

__all__ = ["NO_WRAPPERS", "call_each", "implementations"]

log = logging.getLogger("remote_store_transfer")

NO_WRAPPERS = ("post_transfer", "post_batch", "post_delete")
"""The hooks whose implementations :func:`call_each` calls one by one: wrappers of them are refused."""


def _label(impl: pluggy.HookImpl) -> str:
    """A readable plugin name for messages: pluggy names unnamed objects by ``id()``."""
    if impl.plugin_name.isdigit():
        return f"{type(impl.plugin).__qualname__} object"
    return impl.plugin_name


def implementations(caller: HookCaller) -> tuple[Impl, ...]:
    """``(plugin name, function, argument names)`` of each implementation of *caller*, in pluggy's call order."""
    # pluggy calls implementations last-registered first: the reverse of get_hookimpls().
    return tuple((_label(i), i.function, i.argnames) for i in reversed(caller.get_hookimpls()))


def call_each(
    hook: str,
    impls: Sequence[Impl],
    args: dict[str, object],
    error: BaseException | None,
    about: Callable[[], str],
) -> BaseException | None:
    """Call every implementation of an ending hook (:data:`NO_WRAPPERS`); return the call's final error.

    One set of rules for ``post_transfer``, ``post_batch`` and ``post_delete``:

    * every implementation is called, in order, whatever the others did, with
      the arguments of *args* it asks for; when *args* holds ``"error"``, each
      gets the error current at its turn;
    * the first error wins: *error* (the call's own) when given, else the first
      exception an implementation raises, which gets a note
      ``in HOOK of plugin 'NAME' after ABOUT``;
    * every later exception is logged at ERROR (logger ``remote_store_transfer``)
      and added to the first as a note ``HOOK of plugin 'NAME' also raised TYPE: message``.

    *about* describes the call (``upload local:/a -> Store(...):b, 3 bytes moved``); it
    is called only when something raised.
    """
    for name, function, argnames in impls:
        try:
            function(*[args[a] for a in argnames])
        except BaseException as exc:
            if error is None:
                exc.add_note(f"in {hook} of plugin {name!r} after {about()}")
                error = exc
                if "error" in args:
                    args["error"] = exc
            else:
                log.error("%s of plugin %r raised after %s, which had failed", hook, name, about(), exc_info=exc)
                error.add_note(f"{hook} of plugin {name!r} also raised {type(exc).__name__}: {exc}")
    return error
