"""A watch that ends a run whose Prefect API has gone away."""

import os
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

API_LOST_SETTING = "SEED_DIGEST_API_LOST_SECONDS"  # how long a run waits for an API that stopped answering
API_CHECK_SECONDS = 5.0


class ApiWatch:
    """Ends this process, loudly, when the Prefect API has stopped answering for $SEED_DIGEST_API_LOST_SECONDS
    (default 120).

    Prefect's client retries each call for about a minute, and a flow run whose every call fails goes on
    retrying one call after another (its tasks, then its final state), so a server that goes away mid-run would
    hold the command, data/'s lock and the deployment's slot for good. This thread checks the API on its own
    connection; when it has been unreachable that long, the process writes why and exits with status 1. Nothing
    of the run is lost: it was not committed, the kernel releases the lock, the workers end with the process, and
    the next run cleans what was staged. While the API answers it does nothing; once the flow's body has ended and
    the API answers, it stops."""

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
