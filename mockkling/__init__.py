"""mockkling: a local mock of the Kling AI video-generation API.

The public API is what this module exports; everything else is internal.
"""

import importlib
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from .app import create_app
from .auth import make_jwt
from .backend import Backend
from .clock import Clock, ManualClock, SystemClock
from .config import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    Config,
    ConfigError,
    FailRule,
    ResourcePack,
    Timing,
)
from .errors import BUSINESS_CODES, KlingError
from .fates import Fate, FateError, FateRule
from .fault_rules import FaultRule
from .journal import Journal, JournalEntry
from .limits import Limits
from .rules import RuleError
from .tasks import FAILED, PROCESSING, SUBMITTED, SUCCEED, Task

if TYPE_CHECKING:
    from .interception import intercept
    from .testing import KlingMock

# Loaded on first use: the test handle and interception bring httpx, respx and the live server,
# which `mockkling serve` does not need at start-up.
_LAZY = {"KlingMock": "testing", "intercept": "interception"}

__version__ = version("mockkling")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mockkling' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BUSINESS_CODES",
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET_KEY",
    "FAILED",
    "PROCESSING",
    "SUBMITTED",
    "SUCCEED",
    "Backend",
    "Clock",
    "Config",
    "ConfigError",
    "FailRule",
    "Fate",
    "FateError",
    "FateRule",
    "FaultRule",
    "Journal",
    "JournalEntry",
    "KlingError",
    "KlingMock",
    "Limits",
    "ManualClock",
    "ResourcePack",
    "RuleError",
    "SystemClock",
    "Task",
    "Timing",
    "create_app",
    "intercept",
    "make_jwt",
]
