"""The GPU fast path of a repeated conversion: a device pointer handed over directly.

A zero-copy conversion between two GPU frameworks is, at bottom, a pointer, a shape and a
dtype changing hands. The protocols wrap that in objects each side builds and parses (a
DLPack capsule, a CUDA Array Interface dict), and each framework's Python-level importer
adds its own checks and stream handshake: that is most of a call's cost (torch.from_dlpack
of a CuPy array: about 5 us on an H200 host, for a few hundred nanoseconds of work).

Where the planner already proved a route shares memory (dtype, layout, device fixed by the
fast lane's key), a specialised plan can skip the wrapping: the source's adapter reads the
pointer (``ready_buffer``), the target's adapter builds its object over it (``adopt``: a
DLPack C exchange API call into torch, CuPy's ``UnownedMemory``, Numba's interface
import). Both only when no stream ordering is needed: both sides on the legacy default
stream (what every framework uses unless told otherwise), or a source that waited on the
host already (JAX, on the CUDA Array Interface route, which waits anyway). Anything else
(a side on another stream, several GPUs) is declined and the plan's full run takes the call,
with its stream ordering: the fast path is the plan's own route, minus the wrapping.

The adapters' side of it, the same shape in each GPU adapter:

* ``ready_buffer(x) -> (ptr, shape, readonly) | None``: where a C-contiguous ``x``'s data
  starts, when its pending work is ordered on the legacy default stream or done (None: it
  is not). It never waits.
* ``adopter(dtype, device) -> adopt | None``: ``adopt(owner, ptr, shape, readonly)`` makes the
  framework's object over the pointer, keeping ``owner`` alive, or returns
  :data:`~zerocopy.exchange.edges.DECLINED` when its own current stream is not the legacy
  one; None where it cannot adopt that dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zerocopy import _cuda, registry
from zerocopy.exchange.edges import DECLINED

__all__ = ["direct", "specialiser"]


def direct(target: str, info: Any, source: str) -> Callable[[Any], Any] | None:
    """The specialised call of a ``dlpack -> target`` / ``cai -> target`` hop for objects of
    framework ``source`` with the facts ``info`` (fast-lane plans only): the pointer handed
    over, or DECLINED per call where a stream would need ordering. None where the pair has
    no direct form here (then the hop keeps its one-liner)."""
    if source == target or info.device[0] != "cuda" or info.layout != "C" or not _cuda.single_gpu():
        return None
    try:
        producer, consumer = registry.adapter(source), registry.adapter(target)
    except Exception:  # an unknown source name (a virtual node): no direct form
        return None
    read = getattr(producer, "ready_buffer", None)
    adopter = getattr(consumer, "adopter", None)
    if read is None or adopter is None:
        return None
    adopt = adopter(info.dtype, info.device[1])
    if adopt is None:
        return None

    def handed_over(x: Any) -> Any:
        found = read(x)
        if found is None:
            return DECLINED
        return adopt(x, *found)

    handed_over.may_decline = True  # type: ignore[attr-defined]
    return handed_over


def specialiser(target: str, otherwise: Callable[[], Callable[[Any], Any]] | None = None
                ) -> Callable[[Any, str], Callable[[Any], Any] | None]:
    """``Edge.fast`` for a ``dlpack -> target`` / ``cai -> target`` hop: the hand-over where
    the pair has one, else ``otherwise()`` (the target's own one-liner, looked up then), else
    None."""
    def fast(info: Any, source: str) -> Callable[[Any], Any] | None:
        return direct(target, info, source) or (otherwise() if otherwise is not None else None)

    return fast
