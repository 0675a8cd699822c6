"""The start of each pool worker process (flows/compute.py), before it loads any stage library.

This module imports nothing of the stages: the initializer that a worker unpickles first must not pull them in,
or it would run too late to keep SciPy out.
"""

import os
import signal
import sys
import threading
import time

import psutil

WORKER_NICENESS = 5
OWNER_CHECK_SECONDS = 1.0
# The pool already keeps every core busy, a worker each. A BLAS library left to itself (numpy's OpenBLAS, under
# newsrank's and LSA's matrix products and SVDs) starts a thread per core in each worker, and after each small
# product those threads spin on the other cores, taking them from the other workers (a fifth of an
# evaluation's CPU on 2 cores). Dask's nanny sets the same for its workers; a value the user set is kept.
ONE_THREAD_NUMERICS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def worker_start(owner: int, owner_started: float) -> None:
    """In each worker: one thread for numerics (read when numpy loads), keep SciPy out, end when the process that
    made the pool ends (however it ends), leave Ctrl-C to the flow, and let the flow's own process, which feeds
    the workers, go first.

    NLTK (which sumy imports) loads SciPy's statistics whenever SciPy is installed, for measures no stage
    calls; made unimportable, it costs a worker nothing instead of 70 MiB and a second of start-up.

    Nothing tells a worker that the process that made the pool was killed (the executor's pipes do not, and a
    death signal set on a worker would follow the thread that spawned it, not the process): a thread of its own
    looks every second."""
    for name, value in ONE_THREAD_NUMERICS.items():
        os.environ.setdefault(name, value)
    sys.modules.setdefault("scipy", None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    threading.Thread(target=_end_with, args=(owner, owner_started), daemon=True, name="end-with-owner").start()


def _end_with(owner: int, owner_started: float) -> None:
    """Exit once the owner has ended: gone, its pid reused, or a zombie that its own parent has not reaped yet (a
    killed command whose caller still reads the pipes that the workers hold open)."""
    while True:
        time.sleep(OWNER_CHECK_SECONDS)
        try:
            process = psutil.Process(owner)
            if process.create_time() == owner_started and process.status() != psutil.STATUS_ZOMBIE:
                continue
        except psutil.NoSuchProcess:
            pass
        os._exit(1)
