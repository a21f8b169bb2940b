"""tritonclient's HTTP module, imported so that a Ctrl-C or SIGTERM stays a plain interruption.

Its import pulls in numpy through a C extension (ml_dtypes) that turns an interrupt landing there
into an ImportError with a traceback on stderr: the import runs whole (composer.core.interrupts). Its
requests run on gevent, whose hub prints every KeyboardInterrupt it sees before passing it on to
the caller: the hub is told that an interrupt is no error, so one line on stderr stays one line.
"""

from __future__ import annotations

from typing import Any

from composer.core import interrupts


def http_module() -> Any:
    """``tritonclient.http``, imported whole, with this thread's gevent hub quiet about interrupts."""
    with interrupts.deferred():
        import gevent
        import tritonclient.http

    hub = gevent.get_hub()
    if not issubclass(KeyboardInterrupt, hub.NOT_ERROR):
        hub.NOT_ERROR = (*hub.NOT_ERROR, KeyboardInterrupt)
    return tritonclient.http
