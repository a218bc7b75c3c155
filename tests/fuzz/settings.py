"""How much to fuzz and with which seed, from the environment (one place for pytest and
the standalone runner).

ZEROCOPY_FUZZ_SEED      "fixed" (default, CI: the same cases every run), an integer (that
                        seed), or "random" (a fresh seed per run, printed in the header)
ZEROCOPY_FUZZ_EXAMPLES  total cases over all pairs (default 10,045: 205 per ordered pair)
"""

from __future__ import annotations

import os
import random

from tests.fuzz.natives import CPU

__all__ = ["EXAMPLES", "PAIRS", "PER_PAIR", "SEED"]

PAIRS: tuple[tuple[str, str], ...] = tuple((s, t) for s in CPU for t in CPU)
EXAMPLES = int(os.environ.get("ZEROCOPY_FUZZ_EXAMPLES", "10045"))
PER_PAIR = max(1, -(-EXAMPLES // len(PAIRS)))


def _seed() -> int | None:
    text = os.environ.get("ZEROCOPY_FUZZ_SEED", "fixed").strip().lower()
    if text in ("", "fixed"):
        return None
    if text == "random":
        return random.SystemRandom().randrange(2**32)
    return int(text)


SEED: int | None = _seed()  # None: Hypothesis' derandomized (fixed) mode
