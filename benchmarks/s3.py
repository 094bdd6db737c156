"""A S3 upload and download against a moto server on 127.0.0.1, in its own process: ours (a) and (c) against
upstream, with ``upstream (A/A)`` as the noise floor, in ABBA order, best of the trials. Run alone::

    python benchmarks/s3.py [--quick]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from configs import BASELINE, UP, UP_AA, UP_CB, A, C, Managers, Plan, on_progress
from local_bench import unlink, write_random
from remote_store import Store
from remote_store.ext import transfer as upstream
from timing import best_of, ratio, summary, timed

import remote_store_transfer as rst

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["bench_s3"]


def bench_s3(managers: Managers, workdir: Path, plan: Plan) -> dict[str, Any]:
    try:
        from remote_store.backends import S3Backend
        from servers import MotoServer
    except ImportError as exc:
        return {"unavailable": f"S3 needs remote-store[s3] and moto[server]: {exc}"}
    size = plan.s3_size
    with MotoServer(workdir / "moto").running() as server:
        server.make_bucket("bench")
        store = Store(
            backend=S3Backend(
                "bench", endpoint_url=server.endpoint, key="testing", secret="testing", region_name=server.region
            )
        )
        src = workdir / "s3-src.bin"
        write_random(src, size)
        store.write("src.bin", src.read_bytes(), overwrite=True)
        down = str(workdir / "s3-down.bin")
        configs: dict[str, Callable[[], float]] = {}
        for name, impl, kw in (
            (A, rst, {}),
            (C, managers.noop, {"on_progress": on_progress}),
            (UP, upstream, {}),
            (UP_AA, upstream, {}),
            (UP_CB, upstream, {"on_progress": on_progress}),
        ):
            configs[f"upload\x00{name}"] = timed(
                lambda: None, lambda impl=impl, kw=kw: impl.upload(store, str(src), "up.bin", overwrite=True, **kw)
            )
            configs[f"download\x00{name}"] = timed(
                unlink(down), lambda impl=impl, kw=kw: impl.download(store, "src.bin", down, overwrite=True, **kw)
            )
        for measure in configs.values():
            measure()
        times = best_of(plan.trials, configs)
    out: dict[str, Any] = {"upload": {}, "download": {}, "size": size, "endpoint": "moto on 127.0.0.1"}
    for key, values in times.items():
        op, name = key.split("\x00")
        out[op][name] = {**summary(values, size), "times_s": values}
    for op in ("upload", "download"):
        for name, row in out[op].items():
            base = BASELINE.get(name)
            row["vs_upstream"] = ratio(out[op], base, name) if base else None
            row["vs_upstream_config"] = base
    return out


if __name__ == "__main__":
    from report import run_alone, s3_lines

    run_alone(__doc__, "s3", bench_s3, s3_lines)
