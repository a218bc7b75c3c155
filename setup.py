"""The C extensions: zerocopy._speedups (DLPack capsules in C; the shared pool's
bookkeeping and hot path in _pool.c; zerocopy.to's fast lane in _lane.c; the block cache
torch's allocator calls in _cache.c; see their headers), and zerocopy._raise, the C++ throw
that cache fails a torch allocation with (_raise.cpp).

Everything else about the package lives in pyproject.toml. ``optional=True``: without a C
compiler the install still succeeds and zerocopy runs its pure-Python path
(``zerocopy doctor`` says which one is active).
"""

import sys

from setuptools import Extension, setup

# The block cache (_cache.c) fails a torch allocation by calling _raise.cpp's C++ throw,
# which unwinds through the cache's C frame: that frame needs unwind tables.
UNWIND = [] if sys.platform == "win32" else ["-fexceptions"]

setup(ext_modules=[
    Extension("zerocopy._speedups", ["src/zerocopy/_speedups.c", "src/zerocopy/_pool.c",
                                     "src/zerocopy/_lane.c", "src/zerocopy/_cache.c"],
              extra_compile_args=UNWIND, optional=True),
    Extension("zerocopy._raise", ["src/zerocopy/_raise.cpp"], language="c++", optional=True),
])
