"""Run the memory benchmark as a script: ``python benchmarks/memory.py [--gpu] [--json PATH]``.

The work lives in ``zerocopy.bench.memory`` (also ``zerocopy bench memory``)."""

from __future__ import annotations

import argparse
import sys

from zerocopy.bench import memory

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    memory.add_arguments(parser)
    sys.exit(memory.main(parser.parse_args()))
