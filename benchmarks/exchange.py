"""Run the exchange benchmark as a script: ``python benchmarks/exchange.py [--gpu] [--json PATH]``.

The work lives in ``zerocopy.bench.exchange`` (also ``zerocopy bench exchange``)."""

from __future__ import annotations

import argparse
import sys

from zerocopy.bench import exchange

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    exchange.add_arguments(parser)
    sys.exit(exchange.main(parser.parse_args()))
