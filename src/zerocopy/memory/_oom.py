"""Out-of-memory errors that each framework's own ``except`` clause catches.

A limit refusal raised inside ``cupy.empty`` should be a ``cupy.cuda.memory.OutOfMemoryError``
(CuPy code catches that), one inside a torch allocation a ``torch.OutOfMemoryError``. We
build, once per framework, a class that derives from zerocopy's ``OutOfMemoryError`` *and*
the framework's own type, so both kinds of handler work. The framework's type is asked of
its hook module, and only when the framework is already imported: raising an error must
never import a framework.
"""

from __future__ import annotations

import importlib
import sys
import threading

from zerocopy.errors import OutOfMemoryError
from zerocopy.memory.hooks import HOOKS

__all__ = ["oom_error", "oom_type"]

_cache: dict[str, type[OutOfMemoryError]] = {}
_lock = threading.Lock()


def _framework_base(framework: str) -> type[BaseException] | None:
    module_name = HOOKS.get(framework)
    if module_name is None or framework not in sys.modules:
        return None
    try:
        return importlib.import_module(module_name).oom_type()
    except Exception:  # an odd framework build must not turn an OOM into a crash
        return None


def _build(framework: str, base: type[BaseException]) -> type[OutOfMemoryError]:
    def __init__(self: BaseException, msg: str = "") -> None:
        # Framework OOM types take their own arguments (cupy: size, total); we only
        # carry the message, so skip their __init__ and set the exception's args.
        BaseException.__init__(self, msg)

    def __str__(self: BaseException) -> str:
        return str(self.args[0]) if self.args else ""

    name = f"{framework.capitalize()}OutOfMemoryError"
    return type(name, (OutOfMemoryError, base),
                {"__init__": __init__, "__str__": __str__, "__module__": __name__})


def oom_type(framework: str | None) -> type[OutOfMemoryError]:
    """The error class to raise for ``framework``; zerocopy's own when it has none."""
    if not framework:
        return OutOfMemoryError
    cached = _cache.get(framework)
    if cached is not None:
        return cached
    base = _framework_base(framework)
    if base is None or issubclass(OutOfMemoryError, base):
        return OutOfMemoryError  # framework not imported yet: do not cache, ask again later
    with _lock:
        return _cache.setdefault(framework, _build(framework, base))


def oom_error(framework: str | None, msg: str) -> OutOfMemoryError:
    return oom_type(framework)(msg)
