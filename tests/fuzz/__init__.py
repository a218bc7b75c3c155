"""Property-based fuzzing of ``zerocopy.to`` / ``zerocopy.explain`` (issue 8).

Every ordered pair of the CPU frameworks (numpy, torch, jax, tensorflow, pyarrow, pandas,
polars) x the objects users have (array views, tensors, Series/frames incl. sliced, lazy
copies, nullable and Arrow-backed columns, mixed-dtype tables, Arrow arrays/chunked
arrays/tables/record batches, Parquet read-backs, chunked Polars) x 15 dtypes x nulls x
``copy`` in (None, True, False).

- ``cases.py``    the generator: a case is data; its object is built by evaluating the
                  very line printed as the repro
- ``natives.py``  independent readers (dtype, values, nulls, memory ranges), never zerocopy
- ``oracle.py``   the promises judged for one case
- ``test_fuzz_exchange.py``  pytest/Hypothesis, one test per pair (CI: fixed seed, 10,045 cases)
- ``test_oracle_catches.py`` each promise, broken on purpose, is caught
- ``run.py``      ``python -m tests.fuzz.run --cases 10000 --seed N``: no stop at the first
                  failure; tables by failure kind and by pair, first repro of each

Environment: ``ZEROCOPY_FUZZ_SEED`` = fixed (default) | N | random;
``ZEROCOPY_FUZZ_EXAMPLES`` = total cases (default 10,045).
"""
