"""Adaptors: each wraps an ``upstream`` resource and adds exactly one concern."""

from __future__ import annotations

__all__ = [
    "FailureInjectionAdaptor",
    "LimitingAdaptor",
    "LoggingAdaptor",
    "OutOfMemoryCallbackAdaptor",
    "StatisticsAdaptor",
    "Stats",
    "TrackingAdaptor",
    "release_caches",
]

from zerocopy.memory.adaptors.failure import OutOfMemoryCallbackAdaptor, release_caches
from zerocopy.memory.adaptors.injection import FailureInjectionAdaptor
from zerocopy.memory.adaptors.limiting import LimitingAdaptor
from zerocopy.memory.adaptors.logging import LoggingAdaptor
from zerocopy.memory.adaptors.statistics import StatisticsAdaptor, Stats
from zerocopy.memory.adaptors.tracking import TrackingAdaptor
