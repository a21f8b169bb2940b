"""tisbench: reproducible, isolated Triton + perf_analyzer benchmark labs."""

import importlib
import importlib.util
import sys
import types
from typing import Any

__version__ = "0.1.0"


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its names is used, then imports it and hands that over."""

    def __getattr__(self, name: str) -> Any:
        real = sys.modules.get(self.__name__)
        if real is self:
            del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
        return getattr(real, name)


def _defer(name: str) -> None:
    """docker-py imports paramiko (its ``ssh`` extra) with its transports: ~170 ms that every command
    would pay, though only an ssh:// engine uses it, inside methods. A stand-in takes its place in
    sys.modules and imports it on first use. (importlib's LazyLoader cannot: on Python 3.11 the
    ``import`` statement itself reads the module's ``__spec__`` and so loads it at once.)"""
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _Deferred(name)


_defer("paramiko")
