# Types of the C extension zerocopy._speedups (src/zerocopy/_speedups.c); the pure-Python
# counterparts with the same signatures live in zerocopy.exchange.dlpack.
from typing import Any

DLPACK_MAJOR: int
DLPACK_MINOR: int

def capsule(owner: Any, data: int, shape: tuple[int, ...], strides: tuple[int, ...], code: int,
            bits: int, device_type: int, device_id: int, readonly: bool, versioned: bool, /) -> Any: ...
def capsule_info(capsule: Any, /) -> dict[str, Any]: ...
def consume(capsule: Any, /) -> tuple[Any, dict[str, Any]]: ...
