"""The Prefect API of a run: a temporary server for an ad hoc command, and a watch that ends a run whose API
has gone away.

Prefect starts its own temporary server when a flow runs without PREFECT_API_URL, but only once the flow is
called (after every import) and as a process that outlives a killed command. This one starts first, so it boots
while the command imports its libraries, and the kernel ends it when the command ends, however it ends.
"""

import ctypes
import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1
STARTUP_TIMEOUT_SECONDS = 180  # the first start on a machine creates and migrates Prefect's database


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# At its start a Prefect server registers the block types of every installed Prefect collection; to learn whether
# they changed since last time it imports them all, and prefect-dask's imports Dask's distributed: 0.67 s of the
# boot on 2 cores, for a catalogue that a server with no UI, ending with its command, never shows. A block this
# command uses (a --credentials-block Secret) was saved, with its type, by whoever saved it.
BOOT_WITHOUT_BLOCK_REGISTRATION = {"PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
                                   "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}


# The services a server of one command has no use for. Such a server runs Prefect's "ephemeral" set (task run
# recorder, event persister, events' vacuum, the triggers and actions of automations, the events' stream out);
# these two cost it CPU at its start and with each event, for nothing here:
# - triggers: automations' reactive and proactive triggers and their actions. An automation belongs to a server
#   that keeps running to watch for its events (a long-running server fires those of this Prefect home); this one
#   ends with its command, and its first seconds load the automations and their state for nothing.
# - events' stream out: the websocket feed (/events/out) that a UI or `prefect events stream` reads live; nothing
#   reads it here (the run's task futures are local threads, not Prefect's event-driven TaskRunWaiter).
# What must stay on: the task run recorder (task runs and their states reach the server only as events, and it
# writes them), the event persister (the events that a later server's UI shows for the run, and whose vacuum
# keeps the events table to its retention). Logs and flow-run states are written by the API itself.
BOOT_WITHOUT_IDLE_SERVICES = {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
                              "PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED": "false"}
# The task run recorder writes each task-run event in a transaction of its own (a batch of 1): about 180 for a run
# of 60 task runs. In batches of up to 100, written at least every second and at the server's stop (SIGTERM, as
# stop() sends, or Ctrl-C), the same task runs and states are recorded, and the server's CPU while answering a
# 20,000-file run falls from 2.2 s to 1.3 s. A state reaches the database within a second rather than at once; a
# server killed outright (SIGKILL) loses that last second of states, as it loses the run.
RECORDER_IN_BATCHES = {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
                       "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1"}


class ServerFailed(RuntimeError):
    """The temporary server exited or did not answer in time."""


class TemporaryServer:
    """`prefect.server.api.server:create_app` under uvicorn on a free loopback port, as Prefect's own
    temporary server runs it (no UI), in a process of its own (`serve` below), with PREFECT_API_URL pointing at it
    for this process and its children.

    A `held` server loads Prefect's server code and waits for `release()` before it opens Prefect's database: the
    command starts it first, to boot while it learns whether Prefect already has an API configured (a profile's),
    and stops it if so, before it has touched anything. Otherwise it is released at once.

    Unless `show_logs`, its output goes to a temporary file, not the command's terminal: its stop cancels the
    services' last database writes, which Prefect logs with tracebacks after the command's own last line. The
    file's end is told if the server fails to start."""

    def __init__(self, show_logs: bool = False, held: bool = False):
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        environment = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # a server of one command; offline, it logs errors
                       **BOOT_WITHOUT_BLOCK_REGISTRATION, **BOOT_WITHOUT_IDLE_SERVICES, **RECORDER_IN_BATCHES,
                       **os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                       "PREFECT__SERVER_FINAL": "1"}
        self.output = None if show_logs else tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.server", str(self.port)],
            env=environment, stdin=subprocess.PIPE, stdout=self.output, stderr=self.output,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        if not held:
            self.release()

    def release(self) -> None:
        """Let the server go on to its database and port, and point PREFECT_API_URL at it (the environment: a
        process that has loaded Prefect's settings already refreshes them)."""
        try:
            self.process.stdin.write(RELEASE)
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # it has exited: wait() tells why
        os.environ["PREFECT_API_URL"] = self.api_url

    def wait(self) -> None:
        """Return once the API answers; fail with a message if it dies or does not answer in time."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"the temporary Prefect server exited with status {self.process.returncode}"
                                   f"{self._last_output()}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ServerFailed(f"the temporary Prefect server did not answer within {STARTUP_TIMEOUT_SECONDS} s"
                           f"{self._last_output()}")

    def _last_output(self, lines: int = 12) -> str:
        if self.output is None:
            return ""  # it went to the terminal
        self.output.seek(0)
        tail = self.output.read().decode(errors="replace").strip().splitlines()[-lines:]
        return ":\n" + "\n".join(tail) if tail else ""

    def stop(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()  # a held server's: our end of its input
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.output is not None:
            self.output.close()


API_LOST_SETTING = "SEED_DIGEST_API_LOST_SECONDS"  # how long a run waits for an API that stopped answering
API_CHECK_SECONDS = 5.0


class ApiWatch:
    """Ends this process, loudly, when the Prefect API has stopped answering for $SEED_DIGEST_API_LOST_SECONDS
    (default 120).

    Prefect's client retries each call for about a minute, and a flow run whose every call fails goes on
    retrying one call after another (its tasks, then its final state), so a server that goes away mid-run would
    hold the command, data/'s lock and the deployment's slot for good. This thread checks the API on its own
    connection; when it has been unreachable that long, the process writes why and exits with status 1. Nothing
    of the run is lost: it was not committed, the kernel releases the lock, the workers and a temporary server
    end with the process, and the next run cleans what was staged. While the API answers it does nothing; once
    the flow's body has ended and the API answers, it stops."""

    _current: "ApiWatch | None" = None

    def __init__(self, api_url: str):
        self.api_url = api_url.rstrip("/")
        self.lost_seconds = float(os.environ.get(API_LOST_SETTING, "120"))
        self.body_ended = threading.Event()
        self.committed = False
        threading.Thread(target=self._watch, daemon=True, name="prefect-api-watch").start()

    @classmethod
    @contextmanager
    def flow_body(cls):
        """Watch the API from here until the flow run's last call: one watch per process at a time."""
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
        watch = cls(url) if url and (cls._current is None or cls._current.body_ended.is_set()) else None
        cls._current = watch or cls._current
        try:
            yield
            if watch is not None:
                watch.committed = True  # the body returns only once its run is committed (or had nothing new)
        finally:
            if watch is not None:
                watch.body_ended.set()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=API_CHECK_SECONDS):
                return True
        except urllib.error.HTTPError:  # an answer, if not a welcome one (a proxy, an authentication wall)
            return True
        except (urllib.error.URLError, OSError):
            return False

    def _watch(self) -> None:
        last_answer = time.monotonic()
        while True:
            if self._answers():
                if self.body_ended.is_set():
                    return
                last_answer = time.monotonic()
            elif time.monotonic() - last_answer > self.lost_seconds:
                outcome = ("the run had committed its tables; Prefect was not told that it ended." if self.committed
                           else "the run stops here, uncommitted: nothing of it is in the tables. Run it again once "
                                "the server is back.")
                sys.stderr.write(f"error: the Prefect API at {self.api_url} has not answered "
                                 f"for {self.lost_seconds:.0f} s; {outcome}\n")
                sys.stderr.flush()
                os._exit(1)
            time.sleep(API_CHECK_SECONDS)


RELEASE = b"serve\n"


def serve(port: int) -> None:
    """The temporary server's process (`python -m flows.server PORT`): Prefect's app under uvicorn on loopback, as
    Prefect's own temporary server runs it, with the collector paused while Prefect's server code loads and builds
    the app. Pydantic's models make hundreds of thousands of objects there, which the collector walked again and
    again (a fifth of the boot's CPU); frozen once built, they are not walked again while the server answers.
    It goes on to open Prefect's database and its port only once its command releases it (on its standard
    input)."""
    gc.disable()
    import uvicorn
    from prefect.server.api.server import create_app

    app = create_app()  # Prefect's database is first opened by the app's start, in uvicorn.run
    if sys.stdin.buffer.readline() != RELEASE:
        return  # the command has a Prefect API of its own, or ended
    gc.freeze()
    gc.enable()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
