"""The one timing helper of every benchmark script: ABBA interleaving, best of N, the A/A noise floor, ratios.

Back-to-back runs are not equal: on tmpfs the second of a pair is 2-3% slower
(upstream against itself: 0.97-0.98x), the size of the effects measured. So
every script runs its sides in **ABBA order** -- forward on even trials,
backward on odd ones -- and over an even number of trials each side of every
pair goes first as often as second. Each table also carries an **A/A line**:
the baseline measured a second time under another name, in the same
interleaving; its ratio to the baseline is the noise floor of the run.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "ABANDONED",
    "abba",
    "best_of",
    "error_text",
    "exit_with",
    "fmt_ratio",
    "in_thread",
    "noise_floor",
    "ratio",
    "summary",
    "timed",
    "trial_runs",
    "warm_up",
]

T = TypeVar("T")

ABANDONED: list[str] = []  # runs whose thread outlived its timeout (see in_thread)


def abba(names: Sequence[str], trial: int) -> list[str]:
    """The order of trial *trial*: *names* forward on even trials, backward on odd ones (A B, B A, A B, ...)."""
    return list(names) if trial % 2 == 0 else list(reversed(names))


def best_of(trials: int, configs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Every configuration once per trial, in ABBA order; all its times (the best one counts)."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    for trial in range(trials):
        for name in abba(list(configs), trial):
            times[name].append(configs[name]())
    return times


def error_text(exc: BaseException, limit: int = 400) -> str:
    """``Type: message``, cut at *limit* characters, for a results table."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + " ..."


def warm_up(names: Sequence[str], once: Callable[[str], object], errors: dict[str, str]) -> list[str]:
    """Run *once(name)* for each side, untimed; a side that raises goes to *errors*. Returns the sides that ran."""
    live = []
    for name in names:
        try:
            once(name)
            live.append(name)
        except Exception as exc:  # noqa: BLE001 - a side that cannot run is reported, the others go on
            errors[name] = f"warm-up: {error_text(exc)}"
    return live


def trial_runs(
    names: Sequence[str], trials: int, once: Callable[[str, int], T], errors: dict[str, str]
) -> dict[str, list[T]]:
    """:func:`best_of` for runs that may fail: ``once(name, trial)`` per side and trial, in ABBA order.

    A side that raises is recorded in *errors* and leaves the run.
    """
    out: dict[str, list[T]] = {name: [] for name in names}
    live = list(names)
    for trial in range(trials):
        for name in abba(live, trial):
            gc.collect()
            try:
                out[name].append(once(name, trial))
            except Exception as exc:  # noqa: BLE001 - reported; the side leaves the run
                errors[name] = f"trial {trial}: {error_text(exc)}"
                live.remove(name)
    return out


def timed(
    setup: Callable[[], object], run: Callable[[], object], cpu_times: list[float] | None = None
) -> Callable[[], float]:
    """A measurement: *setup* (untimed), then *run*; returns wall seconds, appends CPU seconds to *cpu_times*."""

    def measure() -> float:
        setup()
        gc.collect()
        cpu = time.process_time()
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
        if cpu_times is not None:
            cpu_times.append(time.process_time() - cpu)
        return wall

    return measure


def summary(times: list[float], nbytes: int, files: int = 1) -> dict[str, float]:
    """Best and median seconds, and the best run's MB/s and files/s."""
    best = min(times)
    return {
        "best_s": best,
        "median_s": statistics.median(times),
        "mb_s": nbytes / best / 1e6,
        "files_s": files / best,
    }


def ratio(rows: dict[str, Any], numerator: str, denominator: str, key: str = "best_s") -> float | None:
    """``rows[numerator][key] / rows[denominator][key]``, or ``None`` when either is missing."""
    a, b = rows.get(numerator, {}).get(key), rows.get(denominator, {}).get(key)
    return a / b if a and b else None


def fmt_ratio(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}x"


def noise_floor(aa_ratio: float | None, at_least: float) -> float:
    """How far the A/A ratio strays from 1, and at least *at_least*."""
    return max(at_least, abs(aa_ratio - 1) if aa_ratio is not None else 0.0)


def in_thread(fn: Callable[[], T], timeout: float, label: str, stop: Callable[[], object] | None = None) -> T:
    """``fn()`` in a daemon thread (every side alike); one still running after *timeout* seconds is cut off.

    *stop* (closing the side's store, say) is called to end a hung run; a
    thread that survives that is recorded in :data:`ABANDONED` under *label*.
    """
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=target, name="bench-run", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        if stop is not None:
            stop()
            thread.join(60)
        if thread.is_alive():
            ABANDONED.append(label)
        raise TimeoutError(f"still running after {timeout:.0f} s" + ("; stopped" if stop is not None else ""))
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


def exit_with(code: int) -> NoReturn:
    """Exit with *code*; without waiting for abandoned runs' threads, which would block the interpreter's exit."""
    sys.stdout.flush()
    if ABANDONED:
        os._exit(code)
    sys.exit(code)
