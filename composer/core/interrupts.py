"""SIGINT and SIGTERM as exceptions, and the few moments when one has to wait.

Both signals raise SignalReceived (a KeyboardInterrupt) in the main thread, so every ``finally``
and ``except BaseException`` cleanup runs. Two cases need more than that:

- a C extension that imports numpy (ml_dtypes, through tritonclient) turns an interrupt that lands
  in that import into an ImportError: ``received()`` still tells the CLI that this process is
  being interrupted, and ``deferred()`` around such an import keeps its traceback off stderr;
- an engine call that creates something must not be cut between its request and its answer, or
  the object exists without this process knowing it, and cleanup can miss it: ``deferred()``
  holds a signal until the call has returned, then raises it;
- a library that catches everything (geventhttpclient's ``except: pass`` around a socket close)
  or a finaliser (where Python only prints what it raises) swallows the exception, while the lab
  goes on being made: ``checkpoint()`` in every wait and before a lab is handed over raises the
  signal again. A finaliser of an object an interrupt cut half-way through construction fails
  too (``'…' object has no attribute '_sock'``): once an interrupt is under way, what finalisers
  raise stays off stderr.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from composer.core.errors import SignalReceived

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    received: str | None = None  # the name of the last signal this process got
    depth = 0  # nesting of deferred() blocks in the main thread
    pending: str | None = None  # a signal that arrived inside one, raised when the outermost ends


def _handle(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    _State.received = name
    if _State.depth:
        _State.pending = name
        return
    raise SignalReceived(name)


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """Finalisers' errors as Python prints them, except while this process is being interrupted."""
    if _State.received is None:
        sys.__unraisablehook__(unraisable)


def install() -> None:
    """Make SIGINT and SIGTERM raise SignalReceived (only the main thread may set handlers)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handle)
        sys.unraisablehook = _unraisable


def checkpoint() -> None:
    """Raise SignalReceived again if this process got a SIGINT/SIGTERM that code in between swallowed.

    Every signal here means "stop": a wait calls this each round, and a lab is not handed over
    while one is on record. Inside ``deferred()`` the block's end raises it instead."""
    name = _State.received
    if name is not None and not _State.depth and threading.current_thread() is threading.main_thread():
        raise SignalReceived(name)


def received() -> str | None:
    """The name of the last SIGINT/SIGTERM this process got, or None."""
    return _State.received


@contextmanager
def deferred() -> Iterator[None]:
    """Run the block whole; a SIGINT/SIGTERM that arrives meanwhile is raised when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only delivered to the main thread
        return
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if not _State.depth and _State.pending:
            name, _State.pending = _State.pending, None
            raise SignalReceived(name)
