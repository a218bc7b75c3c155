"""Standalone fuzz runner: the pytest suite's generator and oracle, without stopping at
the first failure, with a summary table.

    python -m tests.fuzz.run --cases 10000 --seed 1
    python -m tests.fuzz.run --cases 2000 --pair pandas->jax --pair pyarrow->numpy

Prints failures by kind (cases, pairs), by pair (cases, outcomes, failures), and the
first one-line repro of each (kind, pair). Exit status 1 if any case failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter, defaultdict

from tests.fuzz.cases import BuildError, draw_case, namespace
from tests.fuzz.oracle import FAILURE_KINDS, judge
from tests.fuzz.settings import PAIRS


class RandomDraw:
    """The generator's choices, made by a seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, options):  # type: ignore[no-untyped-def]
        return self.rng.choice(tuple(options))

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in all (spread evenly over the pairs)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    parser.add_argument("--pair", action="append", default=[], metavar="SRC->DST",
                        help="only these ordered pairs (repeatable)")
    parser.add_argument("--repros", type=int, default=1, help="repros shown per (kind, pair)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    pairs = [tuple(p.split("->")) for p in args.pair] or list(PAIRS)
    namespace()
    draw = RandomDraw(seed)
    by_kind: Counter[str] = Counter()
    kind_pairs: dict[str, set[str]] = defaultdict(set)
    by_pair: dict[str, Counter[str]] = defaultdict(Counter)
    repros: dict[tuple[str, str], list[str]] = defaultdict(list)
    failed_cases = 0
    start = time.perf_counter()
    for i in range(args.cases):
        source, target = pairs[i % len(pairs)]
        pair = f"{source}->{target}"
        case = draw_case(draw, source, target)
        by_pair[pair]["cases"] += 1
        try:
            verdict = judge(case)
        except BuildError as exc:
            by_pair[pair]["not built"] += 1
            repros[("(test) not built", pair)].append(str(exc))
            continue
        except Exception as exc:  # the oracle itself failed: a test bug, shown apart
            by_pair[pair]["oracle error"] += 1
            repros[("(test) oracle error", pair)].append(f"{case}: {traceback.format_exception_only(exc)[-1]}")
            continue
        by_pair[pair][verdict.outcome.partition(":")[0]] += 1
        kinds = sorted({k for k, _ in verdict.failures}, key=FAILURE_KINDS.index)
        if kinds:
            failed_cases += 1
            by_pair[pair]["failed"] += 1
        for kind in kinds:
            by_kind[kind] += 1
            kind_pairs[kind].add(pair)
            detail = next(d for k, d in verdict.failures if k == kind)
            if len(repros[(kind, pair)]) < args.repros:
                repros[(kind, pair)].append(f"{detail}\n      {verdict.repro}")
    seconds = time.perf_counter() - start

    total = sum(c["cases"] for c in by_pair.values())
    print(f"zerocopy fuzz: {total} cases, seed {seed}, {seconds:.1f} s "
          f"({1000 * seconds / max(total, 1):.1f} ms/case); {failed_cases} cases failed "
          f"({100 * failed_cases / max(total, 1):.2f}%)\n")
    print(f"{'failure kind':<22} {'cases':>6}  pairs")
    for kind in FAILURE_KINDS:
        if by_kind[kind]:
            print(f"{kind:<22} {by_kind[kind]:>6}  {', '.join(sorted(kind_pairs[kind]))}")
    print(f"\n{'pair':<24} {'cases':>6} {'shared':>7} {'copied':>7} {'error':>6} {'failed':>7}")
    for pair, c in sorted(by_pair.items()):
        extra = "".join(f"  {k}={c[k]}" for k in ("wrong type", "not built", "oracle error") if c[k])
        print(f"{pair:<24} {c['cases']:>6} {c['shared']:>7} {c['copied']:>7} {c['error']:>6} {c['failed']:>7}{extra}")
    if repros:
        print("\nfirst repro of each (kind, pair):")
        for (kind, pair), lines in sorted(repros.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            for line in lines:
                print(f"  [{kind}] {pair}: {line}")
    return 1 if failed_cases or any(c["oracle error"] or c["not built"] for c in by_pair.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
