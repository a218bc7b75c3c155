"""One way of the demo in this process: ``python -m zerocopy.demo.worker MODE CONFIG.json``.

The parent (``zerocopy demo``) starts one fresh process per way, so each way's peak
memory is its own and neither inherits the other's caches or pools. On a GPU the
zerocopy way puts every framework on one pool (``zerocopy.memory.share()``) before any of
them starts; the naive way keeps each framework's default pool.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import zerocopy.memory as zm
from zerocopy.demo.pipeline import Config, run


def main(argv: list[str]) -> int:
    mode, config_path = argv
    cfg = Config(**json.loads(Path(config_path).read_text()))
    if cfg.device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS
    if cfg.device == "cuda" and mode == "zerocopy":
        # the frameworks this pipeline allocates with on a GPU, before any of them starts
        used = ["cupy", "numba", "torch", "jax"] + (["cudf"] if importlib.util.find_spec("cudf") else [])
        zm.share(used)
    elif cfg.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")

    def progress(text: str) -> None:
        print(f"  [{mode}] {text}", file=sys.stderr, flush=True)

    result = run(mode, cfg, progress)
    (Path(cfg.work) / f"{mode}.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
