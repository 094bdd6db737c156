"""The benchmarks' timing helper (benchmarks/timing.py): ABBA order, failing sides, runs cut off by a timeout.

No time is measured here: only the order of the runs and what is recorded.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "timing.py"


@pytest.fixture(scope="module")
def timing() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_timing", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_abba_puts_each_side_of_every_pair_first_as_often_as_second(timing: ModuleType) -> None:
    names = ["a", "b", "c", "d"]
    orders = [timing.abba(names, trial) for trial in range(6)]
    assert orders[0] == names
    assert orders[1] == ["d", "c", "b", "a"]
    for x in names:
        for y in names:
            if x != y:
                first = sum(order.index(x) < order.index(y) for order in orders)
                assert first == 3, (x, y, orders)


def test_best_of_runs_the_configurations_in_abba_order_and_keeps_every_time(timing: ModuleType) -> None:
    log: list[str] = []

    def config(name: str, value: float) -> object:
        def measure() -> float:
            log.append(name)
            return value + len(log)

        return measure

    times = timing.best_of(4, {"up": config("up", 0.0), "aa": config("aa", 100.0)})
    assert log == ["up", "aa", "aa", "up", "up", "aa", "aa", "up"]
    assert times == {"up": [1.0, 4.0, 5.0, 8.0], "aa": [102.0, 103.0, 106.0, 107.0]}


def test_a_side_that_fails_is_recorded_and_leaves_while_the_others_go_on(timing: ModuleType) -> None:
    calls: list[tuple[str, int]] = []

    def once(name: str, trial: int) -> int:
        calls.append((name, trial))
        if name == "broken" and trial == 1:
            raise RuntimeError("destination holds 3 files")
        return trial

    errors: dict[str, str] = {}
    live = timing.warm_up(["ok", "broken", "cold"], lambda name: name != "cold" or 1 / 0, errors)
    runs = timing.trial_runs(live, 4, once, errors)
    assert live == ["ok", "broken"]
    assert errors == {
        "cold": "warm-up: ZeroDivisionError: division by zero",
        "broken": "trial 1: RuntimeError: destination holds 3 files",
    }
    assert runs == {"ok": [0, 1, 2, 3], "broken": [0]}
    assert calls == [("ok", 0), ("broken", 0), ("broken", 1), ("ok", 1), ("ok", 2), ("ok", 3)]


def test_in_thread_returns_raises_and_stops_a_run_past_its_timeout(timing: ModuleType) -> None:
    assert timing.in_thread(lambda: 42, 10, "quick") == 42
    with pytest.raises(KeyError, match="missing"):
        timing.in_thread(lambda: {}["missing"], 10, "raises")

    released = threading.Event()
    with pytest.raises(TimeoutError, match="still running after 0 s; stopped"):
        timing.in_thread(lambda: released.wait(60), 0.05, "hung", stop=released.set)
    assert timing.ABANDONED == []  # stopping it ended the thread: nothing left behind


def test_the_noise_floor_is_how_far_a_a_strays_from_one_and_at_least_the_minimum(timing: ModuleType) -> None:
    assert timing.noise_floor(0.97, 0.02) == pytest.approx(0.03)
    assert timing.noise_floor(1.01, 0.02) == 0.02
    assert timing.noise_floor(None, 0.05) == 0.05
    assert timing.ratio({"a": {"best_s": 2.0}, "b": {"best_s": 4.0}}, "a", "b") == 0.5
    assert timing.ratio({"a": {"best_s": 2.0}}, "a", "b") is None
    assert timing.fmt_ratio(0.98765) == "0.988x"
