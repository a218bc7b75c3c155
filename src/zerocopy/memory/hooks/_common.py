"""Helpers every hook shares: the missing-framework error, env-var undo, started errors."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from types import ModuleType

from zerocopy.errors import FrameworkNotInstalledError, FrameworkStartedError, message

__all__ = ["import_framework", "set_env", "started_error", "unknown_mode"]


def import_framework(module: str, framework: str, hint: str) -> ModuleType:
    """Import ``module`` or raise FrameworkNotInstalledError naming the framework and the fix."""
    if importlib.util.find_spec(module.partition(".")[0]) is None:
        raise FrameworkNotInstalledError(message(
            f"{framework} is not installed, so it cannot be routed to the shared pool",
            hint=hint), name=module)
    return importlib.import_module(module)


def set_env(values: Mapping[str, str]) -> Callable[[], None]:
    """Set environment variables; the returned function puts the old values back."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)

    def undo() -> None:
        for key, old in previous.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old

    return undo


def started_error(framework: str, what: str, todo: str) -> FrameworkStartedError:
    return FrameworkStartedError(message(
        f"{framework}'s runtime already started, so {what} cannot apply any more",
        hint=todo))


def unknown_mode(framework: str, mode: str, modes: tuple[str, ...]) -> ValueError:
    return ValueError(message(f"unknown {framework} memory mode", expected=" or ".join(modes),
                              got=repr(mode)))
