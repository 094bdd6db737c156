"""The suite's targets, each checked against ratios of the same run: PASS or FAIL."""

from __future__ import annotations

from typing import Any

from configs import OPS, UP_AA, A, C, D, KiB
from percall import DEFAULT, DEFAULT_CB
from timing import noise_floor

__all__ = ["TARGETS", "check_targets"]

TARGETS = {  # case (c) throughput / upstream + on_progress
    "download": 1.00,
    "upload": 0.98,
    "transfer": 0.98,
}
INTEGRITY_TARGET = 0.60  # (d) sha256 throughput / (a) the same call without integrity
TIE_NOISE = 0.02  # (a) against upstream is a tie within the A/A noise floor, and at least this
SHUTIL_TARGET = 0.97  # (a) throughput / shutil.copyfile: within 3 %
PERCALL_TARGET = 1.05  # per call, ours (default plugins) / upstream
PERCALL_CB_TARGET = 1.10  # per call, ours + on_progress / upstream + on_progress
MEMORY_SLACK = 64 * KiB  # ours may peak at most this much above upstream
GROWTH_NOISE = 8 * KiB  # "flat": peak(large) - peak(small) at most this


def _check(target: str, value: str, passed: bool) -> dict[str, Any]:
    return {"target": target, "value": value, "pass": passed}


def _throughput(thr: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for op, target in TARGETS.items():
        row = thr[op][C]
        value = f"{row['vs_upstream']:.3f}x (CPU time: {row['vs_upstream_cpu']:.3f}x)"
        checks.append(_check(f"{op} (c) >= {target:.2f}x upstream + on_progress", value, row["vs_upstream"] >= target))
    for op in OPS:
        row, aa = thr[op][A], thr[op][UP_AA]["vs_upstream"]
        noise = noise_floor(aa, TIE_NOISE)
        target = f"{op} (a) a tie with upstream: >= {1 - noise:.3f}x (1 - the A/A noise floor, at least 2 %)"
        value = f"{row['vs_upstream']:.3f}x (A/A {aa:.3f}x)"
        checks.append(_check(target, value, row["vs_upstream"] >= 1 - noise))
        target = f"{op} (a) >= {SHUTIL_TARGET:.2f}x shutil.copyfile"
        checks.append(_check(target, f"{row['vs_shutil']:.3f}x", row["vs_shutil"] >= SHUTIL_TARGET))
    for op in OPS:
        integrity = thr[op][D].get("vs_no_integrity")
        target = f"{op} (d) integrity (sha256) >= {INTEGRITY_TARGET:.2f}x (a) without it"
        value = thr[op][D].get("unavailable", "") if integrity is None else f"{integrity:.3f}x"
        checks.append(_check(target, value, integrity is not None and integrity >= INTEGRITY_TARGET))
    return checks


def _percall(percall: dict[str, Any]) -> list[dict[str, Any]]:
    rows = percall["results"]
    aa = rows["upstream (A/A)"]["vs_upstream"]
    checks = []
    for name, base, limit in (
        (DEFAULT, "upstream", PERCALL_TARGET),
        (DEFAULT_CB, "upstream + on_progress", PERCALL_CB_TARGET),
    ):
        value = rows[name]["vs_upstream"]
        target = f"per-call cost, {name} <= {limit:.2f}x {base}"
        checks.append(_check(target, f"{value:.3f}x (A/A {aa:.3f}x)", value <= limit))
    return checks


def _memory(peaks: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for op in OPS:
        row = peaks[op][C]
        target = f"{op} (c) peak memory <= upstream + on_progress + {MEMORY_SLACK // KiB} KiB"
        checks.append(_check(target, f"{row['over_upstream'] / KiB:+.1f} KiB", row["over_upstream"] <= MEMORY_SLACK))
        growths = [r["growth"] for n, r in peaks[op].items() if n.startswith("ours") and "growth" in r]
        target = f"{op} peak memory flat across sizes (ours, all configs, <= {GROWTH_NOISE // KiB} KiB)"
        checks.append(_check(target, f"{max(growths) / KiB:+.1f} KiB", max(growths) <= GROWTH_NOISE))
    return checks


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the run, in report order: throughput, per call, memory."""
    return [
        *_throughput(results["throughput"]),
        *_percall(results["percall"]),
        *_memory(results["memory"]["peaks"]),
    ]
