"""The one C extension, zerocopy._speedups (DLPack capsules in C; the shared pool's
bookkeeping and hot path in _pool.c; zerocopy.to's fast lane in _lane.c; the block cache
torch's allocator calls in _cache.c; see their headers).

Everything else about the package lives in pyproject.toml. ``optional=True``: without a C
compiler the install still succeeds and zerocopy runs its pure-Python path
(``zerocopy doctor`` says which one is active).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("zerocopy._speedups", ["src/zerocopy/_speedups.c", "src/zerocopy/_pool.c",
                                                       "src/zerocopy/_lane.c", "src/zerocopy/_cache.c"], optional=True)])
