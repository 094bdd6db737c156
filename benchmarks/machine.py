"""What every benchmark script records about the run: load, commit, CPU (one copy, shared by the scripts)."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["cpu", "git_rev", "load"]

ROOT = Path(__file__).resolve().parent.parent


def load() -> float:
    """The one-minute load average (0.0 where the platform has none)."""
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return 0.0


def git_rev() -> str | None:
    """The commit under test, ``+`` when ``src`` differs from it."""
    with contextlib.suppress(Exception):
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return rev.stdout.strip() + ("+" if dirty.stdout.strip() else "")
    return None


def cpu() -> str:
    """The CPU's model name."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
