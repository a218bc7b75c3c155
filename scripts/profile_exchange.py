"""Profile zerocopy.to for a few pairs (CPU or GPU) and print where the time goes.

usage: python3 scripts/profile_exchange.py [--gpu] [--calls N]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import timeit

import numpy as np

import zerocopy


def sources(gpu: bool) -> dict[str, object]:
    if gpu:
        import cupy
        import jax.numpy as jnp
        import torch

        return {"cupy": cupy.arange(256, dtype=cupy.float32),
                "torch": torch.arange(256, dtype=torch.float32, device="cuda"),
                "jax": jnp.arange(256, dtype=jnp.float32)}
    import torch

    return {"numpy": np.arange(256, dtype=np.float32), "torch": torch.arange(256.0)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    objs = sources(args.gpu)
    for name, obj in objs.items():
        for target in objs:
            if target == name:
                continue
            zerocopy.to(obj, target)
            per_call = timeit.timeit(lambda o=obj, t=target: zerocopy.to(o, t), number=args.calls)
            print(f"{name}->{target}: {per_call / args.calls * 1e6:.1f} us/call")
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.calls):
                zerocopy.to(obj, target)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(8)
            print("\n".join(line for line in out.getvalue().splitlines()[6:20] if line.strip()))


if __name__ == "__main__":
    main()
