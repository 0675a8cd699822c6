"""Stop requests (SIGTERM, Ctrl-C) taken where the flow waits for its batches, never in the middle of a step.

Python runs a signal's handler in the main thread between any two bytecodes, also inside the finalizer (`__del__`)
of an object that happens to be collected there; an exception raised in a finalizer is printed and dropped. So a
handler that raises (Prefect's SIGTERM bridge, Python's own KeyboardInterrupt) can lose the signal, and the run goes
on to its end: seen with Prefect's bridge inside asyncio's `_SelectorTransport.__del__`. While a flow body runs
under `deferred_stops`, the handler only notes the signal; `result_when_done`, the flow's wait for a batch, hands it
to the handler that was there before (Prefect's, which tells a cancellation from a crash) from its own frame, where
nothing swallows it. A second signal of the same kind goes to that handler at once, wherever it lands.
"""

import signal
import threading
from concurrent.futures import Future, wait
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CHECK_SECONDS = 0.2  # how long a stop can wait for the flow's next check while it waits for a batch


class _Deferred:
    """The signal handlers replaced while a flow body runs, and the stop request noted since."""

    def __init__(self):
        self.replaced: dict[int, object] = {}
        self.requested: int | None = None

    def note(self, signum: int, frame) -> None:
        again = self.requested == signum
        self.requested = signum
        if again:  # asked twice: at once
            self.deliver(frame)

    def deliver(self, frame=None) -> None:
        """Put the replaced handlers back and hand them the noted signal, here."""
        signum, self.requested = self.requested, None
        handler = self.replaced.get(signum)
        self.restore()
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)

    def restore(self) -> None:
        for signum, handler in self.replaced.items():
            signal.signal(signum, handler)
        self.replaced = {}


_current: _Deferred | None = None


@contextmanager
def deferred_stops():
    """For a flow body in the main thread: SIGTERM and SIGINT are noted, and raised at the next check (or at the
    body's end). Elsewhere (a flow called from another thread) signals are left as they are."""
    global _current
    if threading.current_thread() is not threading.main_thread() or _current is not None:
        yield
        return
    deferred = _current = _Deferred()
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) not in (signal.SIG_IGN, None):
            deferred.replaced[signum] = signal.signal(signum, deferred.note)
    try:
        yield
    finally:
        _current = None
        if deferred.requested is not None:
            deferred.deliver()
        deferred.restore()


def check_stop() -> None:
    """Raise a noted stop request, through the handler it was kept from."""
    deferred = _current
    if deferred is not None and deferred.requested is not None:
        deferred.deliver()


def result_when_done(future):
    """A future's result (a Prefect task run's or a thread's), taking stop requests while it waits (a future of a
    Prefect task runner that wraps no concurrent future is waited for as it is)."""
    waited = getattr(future, "wrapped_future", future)
    while isinstance(waited, Future) and not waited.done():
        check_stop()
        wait([waited], CHECK_SECONDS)
    check_stop()
    return future.result()
