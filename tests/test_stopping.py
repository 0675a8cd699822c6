"""A stop request during a flow body is raised where the flow checks for it, so that no finalizer swallows it."""

import gc
import os
import signal

import pytest

from flows.stopping import check_stop, deferred_stops


class Stopped(BaseException):
    """What a raising SIGTERM handler raises here, as Prefect's bridge raises TerminationSignal."""


def raise_stopped(signum, frame):
    raise Stopped(signum)


class SignalledInFinalizer:
    """Sends this process a SIGTERM from its finalizer: the handler runs there, where Python drops exceptions."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # bytecodes for the handler to run between, inside this finalizer


@pytest.fixture
def raising_sigterm():
    previous = signal.signal(signal.SIGTERM, raise_stopped)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_landing_in_a_finalizer_is_raised_at_the_next_check(raising_sigterm):
    with pytest.raises(Stopped):
        with deferred_stops():
            SignalledInFinalizer()  # collected at once: the signal arrives inside __del__
            gc.collect()
            check_stop()
            pytest.fail("the noted SIGTERM was not raised by the check")
    assert signal.getsignal(signal.SIGTERM) is raise_stopped  # the handler from before is back


def test_a_stop_noted_after_the_last_check_is_raised_at_the_body_end(raising_sigterm):
    with pytest.raises(Stopped):
        with deferred_stops():
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))
    assert signal.getsignal(signal.SIGTERM) is raise_stopped


def test_a_second_sigterm_is_raised_at_once(raising_sigterm):
    with deferred_stops():
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGTERM)
            sum(range(1000))
    assert signal.getsignal(signal.SIGTERM) is raise_stopped


def test_ctrl_c_is_deferred_too():
    with pytest.raises(KeyboardInterrupt):
        with deferred_stops():
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # not raised here
            check_stop()
            pytest.fail("the noted Ctrl-C was not raised by the check")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
