"""The layout engine: records <-> columns and tables <-> tensors at memory speed.

- :func:`to_columns` / :func:`to_records`: array of structures <-> structure of arrays
  (NumPy structured arrays, ``(N, k)`` arrays of any framework, raw bytes + dtype).
- :func:`stack` / :func:`unstack`: table <-> 2-D tensor, free whenever the columns are
  already contiguous (F order).
- :func:`column_block`: one F-order buffer that is a table and a tensor at once.
- :func:`record_layout`: the byte map of a record (``.explain()``).

CPU work runs in one cache-blocked Numba kernel, GPU work in tiled CUDA kernels made per
record layout (CuPy RawKernel). Importing this package imports no framework.
"""

from __future__ import annotations

from zerocopy.layout._layout import Field, RecordLayout, record_layout
from zerocopy.layout.block import ColumnBlock, column_block
from zerocopy.layout.records import to_columns, to_records
from zerocopy.layout.tables import stack, unstack

__all__ = [
    "ColumnBlock",
    "Field",
    "RecordLayout",
    "column_block",
    "record_layout",
    "stack",
    "to_columns",
    "to_records",
    "unstack",
]
