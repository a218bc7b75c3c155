"""Run the layout benchmark as a script: ``python benchmarks/layout.py [--gpu] [--json PATH]``.

The work lives in ``zerocopy.bench.layout`` (also ``zerocopy bench layout``)."""

from __future__ import annotations

import argparse
import sys

from zerocopy.bench import layout

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    layout.add_arguments(parser)
    sys.exit(layout.main(parser.parse_args()))
