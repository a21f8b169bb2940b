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
    """A stand-in in sys.modules that imports the module on first use."""
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _Deferred(name)


# Why sys.modules is rewritten on import: docker-py's transports import paramiko (its ``ssh``
# extra) at the top of docker.transport.sshconn, ~170 ms that every command touching Docker would
# pay though only an ssh:// engine uses it, inside methods; nothing else defers it: docker-py has
# no switch, importlib's LazyLoader loads it at once on Python 3.11 (the ``import`` statement reads
# ``__spec__``), and leaving paramiko out loses ssh:// engines.
_defer("paramiko")
