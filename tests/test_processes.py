"""No process outlives its command: its workers die with it, even on kill -9."""

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.conftest import REPO, alive, write_articles


def started_run(tmp_path) -> tuple[subprocess.Popen, list[psutil.Process], list[str], dict]:
    """A `seed-digest run` of 400 files with no Prefect API configured, once its workers are up and reading."""
    seeds, data = tmp_path / "seeds", tmp_path / "data"
    write_articles(seeds, range(400))
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # no API of a developer's profile
    command = [sys.executable, "-m", "flows.cli", "run", "--source", str(seeds), "--data", str(data),
               "--workers", "2", "--batch-size", "50", "--no-progress"]
    run = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    descendants: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        descendants = psutil.Process(run.pid).children(recursive=True)
        lines = alive(descendants)
        if sum("spawn_main" in line for line in lines) >= 2 and (data / ".spill").is_dir():
            return run, descendants, command, environment  # both workers, batches read
        time.sleep(0.2)
    raise AssertionError(f"the command's workers did not start: {alive(descendants)}")


def assert_all_gone(descendants: list[psutil.Process]) -> None:
    deadline = time.monotonic() + 15
    while alive(descendants) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(descendants) == []


def assert_next_run_completes(command: list[str], environment: dict) -> None:
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr  # the stopped run left no lock and nothing half-written
    assert "400" in finished.stdout


def test_kill_9_of_the_command_ends_its_workers(tmp_path):
    """Also while the killed command is a zombie that its caller has not reaped (as a caller that still reads the
    pipes the workers hold open has not)."""
    run, descendants, command, environment = started_run(tmp_path)
    os.kill(run.pid, signal.SIGKILL)
    assert_all_gone(descendants)
    run.wait()
    assert_next_run_completes(command, environment)


def test_sigterm_while_the_command_waits_for_a_held_data_folder_stops_it_with_a_message(tmp_path):
    from tasks.store import exclusive

    seeds, data = tmp_path / "seeds", tmp_path / "data"
    write_articles(seeds, range(2))
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    with exclusive(data, 0):
        waiting = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--source", str(seeds), "--data",
                                    str(data), "--lock-timeout", "60"], cwd=REPO, env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)  # well into the wait
        waiting.send_signal(signal.SIGTERM)
        out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("stopped:"), err


def test_sigterm_stops_the_command_in_seconds_with_a_message(tmp_path):
    run, descendants, command, environment = started_run(tmp_path)
    os.kill(run.pid, signal.SIGTERM)
    stopped = time.monotonic()
    out, err = run.communicate(timeout=60)
    assert time.monotonic() - stopped < 15
    assert run.returncode == 130
    assert err.strip().splitlines()[-1].startswith("stopped:"), err
    assert_all_gone(descendants)
    assert_next_run_completes(command, environment)


def threads_that_numpy_starts() -> int:
    """In a worker: how many threads importing numpy (and so loading its BLAS library) adds to the process."""
    assert "numpy" not in sys.modules, "the worker loaded numpy before the test could count its threads"
    before = psutil.Process().num_threads()
    import numpy

    numpy.ones((300, 300)) @ numpy.ones((300, 300))
    return psutil.Process().num_threads() - before


def test_a_workers_numerics_start_no_threads_to_compete_with_the_other_workers(monkeypatch):
    from flows.compute import call, workers
    from flows.worker_start import ONE_THREAD_NUMERICS

    for name in ONE_THREAD_NUMERICS:
        monkeypatch.delenv(name, raising=False)
    with workers(count=2):
        assert call(threads_that_numpy_starts) == 0
