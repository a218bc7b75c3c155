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
from dataclasses import dataclass, field

from tests.fuzz.cases import BuildError, draw_case, namespace
from tests.fuzz.oracle import FAILURE_KINDS, Verdict, judge
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


@dataclass
class Tally:
    seed: int
    seconds: float = 0.0
    failed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    kind_pairs: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_pair: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_object: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    repros: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, pair: str, object_kind: str, verdict: Verdict, keep: int) -> None:
        outcome = verdict.outcome.partition(":")[0]
        kinds = sorted({k for k, _ in verdict.failures}, key=FAILURE_KINDS.index)
        for counter in (self.by_pair[pair], self.by_object[object_kind]):
            counter[outcome] += 1
            counter["failed"] += bool(kinds)
        self.failed += bool(kinds)
        for kind in kinds:
            self.by_kind[kind] += 1
            self.kind_pairs[kind].add(pair)
            detail = next(d for k, d in verdict.failures if k == kind)
            if len(self.repros[(kind, pair)]) < keep:
                self.repros[(kind, pair)].append(f"{detail}\n      {verdict.repro}")


def run(cases: int, seed: int, pairs: list[tuple[str, str]], keep: int) -> Tally:
    namespace()
    draw, tally = RandomDraw(seed), Tally(seed)
    start = time.perf_counter()
    for i in range(cases):
        source, target = pairs[i % len(pairs)]
        pair = f"{source}->{target}"
        case = draw_case(draw, source, target)
        tally.by_pair[pair]["cases"] += 1
        tally.by_object[case.kind]["cases"] += 1
        try:
            tally.add(pair, case.kind, judge(case), keep)
        except BuildError as exc:
            tally.by_pair[pair]["not built"] += 1
            tally.repros[("(test) not built", pair)].append(str(exc))
        except Exception as exc:  # the oracle itself failed: a test bug, shown apart
            tally.by_pair[pair]["oracle error"] += 1
            tally.repros[("(test) oracle error", pair)].append(
                f"{case}: {traceback.format_exception_only(exc)[-1]}")
    tally.seconds = time.perf_counter() - start
    return tally


def _table(title: str, rows: dict[str, Counter[str]]) -> None:
    print(f"\n{title:<24} {'cases':>6} {'shared':>7} {'copied':>7} {'error':>6} {'failed':>7}")
    for name, c in sorted(rows.items()):
        extra = "".join(f"  {k}={c[k]}" for k in ("wrong type", "not built", "oracle error") if c[k])
        print(f"{name:<24} {c['cases']:>6} {c['shared']:>7} {c['copied']:>7} {c['error']:>6} {c['failed']:>7}{extra}")


def report(t: Tally) -> None:
    total = sum(c["cases"] for c in t.by_pair.values())
    print(f"zerocopy fuzz: {total} cases, seed {t.seed}, {t.seconds:.1f} s "
          f"({1000 * t.seconds / max(total, 1):.1f} ms/case); {t.failed} cases failed "
          f"({100 * t.failed / max(total, 1):.2f}%)\n")
    print(f"{'failure kind':<22} {'cases':>6}  pairs")
    for kind in FAILURE_KINDS:
        if t.by_kind[kind]:
            print(f"{kind:<22} {t.by_kind[kind]:>6}  {', '.join(sorted(t.kind_pairs[kind]))}")
    _table("pair", t.by_pair)
    _table("source object", t.by_object)
    if t.repros:
        print("\nfirst repro of each (kind, pair):")
        for (kind, pair), lines in sorted(t.repros.items()):
            for line in lines:
                print(f"  [{kind}] {pair}: {line}")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    pairs = [tuple(p.split("->")) for p in args.pair] or list(PAIRS)
    tally = run(args.cases, seed, pairs, args.repros)
    report(tally)
    broken = any(c["oracle error"] or c["not built"] for c in tally.by_pair.values())
    return 1 if tally.failed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
