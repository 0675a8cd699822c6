"""Where batch work runs: a pool of worker processes started once per run, or a Dask cluster.

Prefect's task of a batch (or, in a run without Prefect, a thread) runs in the flow's own process and hands the
batch's pure function (tasks/batches.py) to the pool, so the workers never import Prefect nor start a Prefect
server of their own: a run talks to one Prefect API, and no batch pays a worker's start-up again. A worker that
dies (a segfault, the kernel's out-of-memory killer) costs only the batches it held: the pool is restarted, and
the batch runs again input by input, each in a process of its own, so that the input that kills it becomes a
reject and the rest go on.
"""

import multiprocessing
import os
import threading
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import psutil

from flows.worker_start import worker_start
from tasks.batches import Batch, Frames, combine, warm_up
from tasks.ingest import TransientSourceError

DASK_ADDRESS_SETTING = "SEED_DIGEST_DASK_ADDRESS"
BATCH_DEADLINE_BASE_SECONDS = 300.0
BATCH_DEADLINE_SECONDS_PER_INPUT = 2.0


class WorkerDied(RuntimeError):
    """The process running a batch ended without an answer."""


class WorkerTimedOut(WorkerDied):
    """A batch ran past its deadline; its worker was killed."""


class PoolClosed(RuntimeError):
    """The run's workers were closed because the run is ending (stopped, failed, or its API lost): a batch still
    in hand is dropped, not retried input by input in new processes."""

    def __init__(self):
        super().__init__("the run's workers were closed")


def deadline_seconds(inputs: int) -> float:
    """How long a batch of `inputs` may run before its worker is killed and its inputs are tried one by one: far
    beyond any real input (the caps bound each one), so that only a runaway one (a regular expression gone
    exponential, a library stuck in a loop) ever meets it, and a run never waits for ever."""
    return BATCH_DEADLINE_BASE_SECONDS + BATCH_DEADLINE_SECONDS_PER_INPUT * inputs


def _processes(workers: int) -> ProcessPoolExecutor:
    """Workers are new interpreters (spawned), never forks of the flow's threaded process; a fork server would be
    one process more, 13 MiB, for workers that import their libraries after the fork all the same."""
    owner = psutil.Process()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_start, initargs=(owner.pid, owner.create_time()))


class LocalPool:
    """`workers` processes on this machine, kept for the whole run."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = _processes(workers)
        self._restart = threading.Lock()
        self._closed = False

    def warm_up(self) -> None:
        """Start the workers now and let them import the stage libraries, in the background."""
        for _ in range(self.workers):
            self._executor.submit(warm_up)

    def call(self, function, *arguments, timeout: float | None = None):
        executor = self._executor
        try:
            if self._closed:
                raise PoolClosed()
            return executor.submit(function, *arguments).result(timeout)
        except BrokenProcessPool:
            self._replace(executor)
            raise WorkerDied("a worker process died") from None
        except TimeoutError:
            self._replace(executor)
            raise WorkerTimedOut(f"still running after {timeout:.0f} s") from None

    def _replace(self, executor: ProcessPoolExecutor) -> None:
        """A new pool for the batches to come; the old one's workers are killed (other batches it held fail
        and are tried again input by input). A closed pool is not replaced: its batches end with PoolClosed."""
        with self._restart:
            if self._closed:
                raise PoolClosed() from None
            if self._executor is executor:
                _kill(executor)
                self._executor = _processes(self.workers)

    def close(self, finished: bool = True) -> None:
        """Let the workers end after a run that finished (they exit, 0.2 s, while the run commits; the
        interpreter's exit waits for them); kill them after one that failed or was stopped, so that a SIGTERM or a
        lost API ends the command in seconds, not after the batches in hand (which end with PoolClosed rather than
        start new workers)."""
        with self._restart:
            self._closed = True
        if finished:
            self._executor.shutdown(wait=False, cancel_futures=True)
        else:
            _kill(self._executor)


def _kill(executor: ProcessPoolExecutor) -> None:
    """Kill the executor's workers. One killed while it wrote a batch's result leaves half a message in the
    results pipe, and the executor's thread would wait for the rest for ever (holding every future in hand, and
    the interpreter's exit, which joins that thread): the pipe's last write end, which this process holds, is
    closed once the workers are dead, so that thread reads the end of the pipe and fails those futures with
    BrokenProcessPool instead."""
    processes = list((getattr(executor, "_processes", None) or {}).values())  # the standard library's own records,
    results = getattr(executor, "_result_queue", None)  # which shutdown() lets go of
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join()
    if results is not None:
        results._writer.close()


class DaskPool:
    """The workers of a Dask cluster (distributed's client); they need this project installed, not Prefect."""

    def __init__(self, address: str):
        from distributed import Client

        self.client = Client(address, set_as_default=False)

    def call(self, function, *arguments, timeout: float | None = None):
        from distributed import KilledWorker

        future = self.client.submit(function, *arguments, pure=False)
        try:
            return future.result(timeout)
        except KilledWorker:
            raise WorkerDied("Dask workers died running the batch") from None
        except TimeoutError:
            future.cancel()  # Dask cannot stop a running task: its worker goes on until the task returns
            raise WorkerTimedOut(f"still running after {timeout:.0f} s") from None

    def close(self, finished: bool = True) -> None:
        self.client.close()


class Isolation:
    """Runs one-input batches one at a time in a single process of their own, restarted when one kills it."""

    def __init__(self):
        self._pool: LocalPool | None = None
        self._lock = threading.Lock()
        self._closed = False

    def run(self, batch: Batch) -> Frames:
        with self._lock:
            if self._closed:
                raise PoolClosed()
            if self._pool is None:
                self._pool = LocalPool(1)
            try:
                return self._pool.call(*batch.call(), timeout=deadline_seconds(1))
            except WorkerTimedOut as error:
                return batch.reject("timed_out", f"the input was {error} alone, and its process was killed")
            except WorkerDied:
                return batch.reject("crashed", "the worker process died while processing this input alone "
                                               "(a crash in a library, or out of memory)")
            except (TransientSourceError, PoolClosed):
                raise
            except Exception as error:  # noqa: BLE001 - any failure of one input is that input's reject
                return batch.reject("failed", f"{type(error).__name__}: {error}")

    def close(self, finished: bool = True) -> None:
        self._closed = True  # not under the lock, which an input running alone holds for up to its deadline
        if self._pool is not None:
            self._pool.close(finished)


class _Current:
    """The pool of the flow running in this process, for its batch tasks (threads of this process) to use."""

    pool: "LocalPool | DaskPool | None" = None
    isolation: Isolation | None = None
    prestarted: LocalPool | None = None


def cluster_address(dask_address: str | None) -> str | None:
    """The Dask scheduler a run's batches go to: the one given, else $SEED_DIGEST_DASK_ADDRESS; None: local."""
    return dask_address or os.environ.get(DASK_ADDRESS_SETTING)


def prestart(count: int | None = None, dask_address: str | None = None) -> None:
    """Start a command's local pool before its flow does, so its workers import while the flow run starts
    (nothing when the batches go to a Dask cluster)."""
    if cluster_address(dask_address):
        return
    _Current.prestarted = LocalPool(count or os.cpu_count() or 1)
    _Current.prestarted.warm_up()


@contextmanager
def workers(dask_address: str | None = None, count: int | None = None):
    """For a flow's duration: `count` worker processes (default: all cores; a prestarted pool of that size if
    there is one), or the Dask cluster at `dask_address` (default $SEED_DIGEST_DASK_ADDRESS)."""
    address = cluster_address(dask_address)
    count = count or os.cpu_count() or 1
    prestarted, _Current.prestarted = _Current.prestarted, None
    if prestarted is not None and (address or prestarted.workers != count):
        prestarted.close()
        prestarted = None
    _Current.pool = DaskPool(address) if address else prestarted or LocalPool(count)
    _Current.isolation = Isolation()
    finished = False
    try:
        yield _Current.pool
        finished = True
    finally:
        _Current.pool.close(finished)
        _Current.isolation.close(finished)
        _Current.pool = _Current.isolation = None


def call(function, *arguments, timeout: float | None = None):
    """`function(*arguments)` on the current pool."""
    return _Current.pool.call(function, *arguments, timeout=timeout)


def run_batch(batch: Batch) -> Frames:
    """A batch's frames; if it fails, kills its worker or runs past its deadline, every input again on its own,
    failures as rejects. A transient source error is raised for Prefect to retry the batch."""
    try:
        return call(*batch.call(), timeout=deadline_seconds(batch.items.height))
    except (TransientSourceError, PoolClosed):
        raise
    except Exception:  # noqa: BLE001 - found and reported input by input below
        return combine([_Current.isolation.run(single) for single in batch.split()])
