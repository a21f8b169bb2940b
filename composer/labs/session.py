"""One lab's life, written once: up → ready → yield → collect → down.

``lab``, ``matrix``, swarm runs and ``tune`` all hold a lab through a :class:`LabSession` over a
:class:`Backend` (single-host containers or a swarm service). The session owns what every path
must do alike: remove the lab on success, failure and interruption (``keep`` leaves it running,
except after an interrupt), collect what the run left before the lab goes, keep a Ctrl-C from
cutting the removal short, and record a failure in a manifest the same way everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from composer.core.errors import Interrupted, TisbenchError, interruption_message
from composer.engine import containers as engine

Say = Callable[[str], None]
L = TypeVar("L")


class Backend(Protocol[L]):
    """Where a lab runs. ``up`` leaves nothing behind when it raises."""

    kind: str  # how messages name it: "lab", "swarm lab"

    def up(self) -> L: ...

    def name_of(self, lab: L) -> str: ...

    def collect(self, lab: L) -> None:
        """Save what the run leaves on the engine (logs, manifest) before the lab is removed."""

    def down(self, lab: L, reading: threading.Event | None = None) -> None:
        """Remove the lab. With ``reading``, what a run still reads files from (the analyzer) stays
        until it is set, while the rest goes at once."""


def failure_record(exc: BaseException) -> dict[str, Any]:
    """How a failed or interrupted run is recorded in its manifest, on every path."""
    if isinstance(exc, KeyboardInterrupt):
        return {"exit_code": int(Interrupted.exit_code), "error": interruption_message(exc)}
    if isinstance(exc, TisbenchError):
        return {"exit_code": int(exc.exit_code), "error": exc.one_line()}
    return {"exit_code": None, "error": f"{type(exc).__name__}: {exc}"}


class _Teardown:
    """A removal on a thread (results already collected); join() re-raises its failure."""

    def __init__(self, remove: Callable[[], None], name: str) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(remove,), name=f"teardown-{name}", daemon=True)
        self._thread.start()

    def _run(self, remove: Callable[[], None]) -> None:
        try:
            remove()
        except BaseException as exc:  # handed to join() in the main thread
            self._error = exc

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


class LabSession(Generic[L]):
    """``with LabSession(backend, say=say) as lab:`` — the lab is up and ready inside the block."""

    def __init__(self, backend: Backend[L], *, say: Say, keep: bool = False) -> None:
        self.backend = backend
        self.say = say
        self.keep = keep
        self._lab: L | None = None
        self._teardown: _Teardown | None = None
        self._reading: threading.Event | None = None

    @property
    def lab(self) -> L:
        if self._lab is None:
            raise RuntimeError("the session's lab is not up")
        return self._lab

    def __enter__(self) -> L:
        self._lab = self.backend.up()
        return self._lab

    def remove_early(self, reading: threading.Event | None = None) -> None:
        """The run needs nothing more from the lab: start removing it now, beside whatever comes next.
        ``reading``: the run still reads its files from the analyzer until it sets it (the server
        and the network go meanwhile); leaving the session sets it in any case."""
        if self.keep or self._teardown is not None:
            return
        lab, backend = self.lab, self.backend
        with engine.with_signals_masked_ctx():
            backend.collect(lab)
            self._reading = reading
            remove = (lambda: backend.down(lab, reading)) if reading is not None else (lambda: backend.down(lab))
            self._teardown = _Teardown(remove, backend.name_of(lab))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        lab, name = self.lab, self.backend.name_of(self.lab)
        keep = self.keep and not isinstance(exc, KeyboardInterrupt)  # an interrupt leaves nothing running
        with engine.with_signals_masked_ctx():  # a second Ctrl-C cannot cut the removal short
            if self._teardown is not None:
                if self._reading is not None:
                    self._reading.set()  # whatever the run still meant to read, the removal goes on
                self._teardown.join()
                self.say(f"{self.backend.kind} {name} removed")
                return
            try:
                self.backend.collect(lab)
            finally:
                if keep:
                    self.say(f"{self.backend.kind} {name} kept: tisbench down {name} removes it")
                else:
                    self.backend.down(lab)
                    self.say(f"{self.backend.kind} {name} removed")
