"""A real Prefect server on loopback: deploy prefect.yaml, trigger a run through the REST API, a process worker
runs it, and the test reads the Parquet it wrote."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, SEED, alive, write_articles

PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(env: dict, method: str, path: str, body: dict | None = None):
    """A call to the server's REST API; a busy SQLite answers 503 now and then, which Prefect's own client
    retries, and so does this."""
    request = urllib.request.Request(env["PREFECT_API_URL"] + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    for attempt in range(6):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or "null")
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 5:
                raise
            time.sleep(2 ** attempt / 4)


class RealServer:
    """`prefect server start` on a loopback port with a Prefect home of its own; it can be stopped and started
    again on the same port and database, as an operator's restart would."""

    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{self.port}/api",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
        self.process = None

    def start(self) -> None:
        log = open(self.home / "server.log", "a")
        self.process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 180
        while True:
            try:
                api(self.env, "GET", "/health")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.home / "server.log").read_text()) from None
                time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    real = RealServer(tmp_path_factory.mktemp("prefect-home"))
    real.start()
    try:
        yield real.env
    finally:
        real.stop()


def prefect(env: dict, *args: str) -> str:
    done = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_deployed_flow_runs_on_a_worker_and_writes_parquet(server, tmp_path):
    seeds, data = tmp_path / "seeds", tmp_path / "data"
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    prefect(server, "work-pool", "create", "seed-digest", "--type", "process")
    prefect(server, "--no-prompt", "deploy", "--all")

    deployment = api(server, "GET", "/deployments/name/seed-digest/daily")
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 6 * * *"]
    assert deployment["parameters"]["lock_timeout"] == 1800
    compaction = api(server, "GET", "/deployments/name/seed-digest-compact/weekly-compaction")
    assert [s["schedule"]["cron"] for s in compaction["schedules"]] == ["0 3 * * 0"]

    run = api(server, "POST", f"/deployments/{deployment['id']}/create_flow_run",
              {"parameters": {"source": str(seeds), "data_dir": str(data), "sentences": 2}})
    worker = subprocess.run([PREFECT, "worker", "start", "--pool", "seed-digest", "--run-once"], env=server,
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    state = api(server, "GET", f"/flow_runs/{run['id']}")["state"]
    assert state["type"] == "COMPLETED", worker.stdout + worker.stderr

    summaries = pl.read_parquet(data / "summaries" / "*" / "*.parquet")
    assert summaries.height == 1 and len(summaries["sentences"][0]) == 2
    assert pl.read_parquet(data / "runs" / "*" / "*.parquet")["flow_run_id"].to_list() == [run["id"]]


def test_an_ad_hoc_run_goes_to_the_api_of_the_active_prefect_profile(server, tmp_path):
    """`prefect config set PREFECT_API_URL=...` (or `prefect cloud login`) configures the API in a profile, not in
    the environment: the command's run and evaluation go there, as flow runs."""
    home, seeds, data = tmp_path / "home", tmp_path / "seeds", tmp_path / "data"
    home.mkdir()
    (home / "profiles.toml").write_text(f'active = "team"\n[profiles.team]\nPREFECT_API_URL = '
                                        f'"{server["PREFECT_API_URL"]}"\n', encoding="utf-8")
    env = {key: value for key, value in server.items() if key != "PREFECT_API_URL"} | {"PREFECT_HOME": str(home)}
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--source", str(seeds), "--data", str(data),
                           "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    flow_run_id = pl.read_parquet(data / "runs" / "*" / "*.parquet")["flow_run_id"].item()
    assert api(server, "GET", f"/flow_runs/{flow_run_id}")["state"]["type"] == "COMPLETED"
    assert not list(home.glob("*.db"))  # no Prefect server of the command's own made a database in its home

    corpus = tmp_path / "one.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": SEED.read_text(encoding="utf-8"), "reference": "A line."}) + "\n",
                      encoding="utf-8")
    evaluations = {"flows": {"name": {"any_": ["seed-digest-evaluate"]}}}
    before = api(server, "POST", "/flow_runs/count", evaluations)
    done = subprocess.run([sys.executable, "-m", "flows.cli", "evaluate", "--corpus", str(corpus), "--data",
                           str(tmp_path / "evaluation"), "--algorithms", "lead", "--resamples", "10"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert api(server, "POST", "/flow_runs/count", evaluations) == before + 1


def final_state(env: dict, flow_run_id: str, seconds: float = 300) -> dict:
    """The flow run's state once it has finished (completed, failed or crashed), within `seconds`."""
    deadline = time.monotonic() + seconds
    while (state := api(env, "GET", f"/flow_runs/{flow_run_id}")["state"])["type"] not in (
            "COMPLETED", "FAILED", "CRASHED"):
        assert time.monotonic() < deadline, state
        time.sleep(1)
    return state


def wait_for_task_runs(env: dict, more_than: int, run: subprocess.Popen) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        count = api(env, "POST", "/task_runs/count", {})
        if count > more_than:
            return count
        time.sleep(0.05)
    raise AssertionError(f"no batch task started: {run.poll()=}")


def test_a_server_outage_while_batch_tasks_start_never_hangs_a_run(tmp_path):
    """Stopped for 9 s and restarted, the server costs the run nothing; stopped for good, the run ends within
    the watch's bound with a message; the next run proceeds, and every input is in the tables exactly once."""
    real = RealServer(tmp_path / "home")
    real.home.mkdir()
    real.start()
    seeds, data = tmp_path / "seeds", tmp_path / "data"
    write_articles(seeds, range(600), parts=3)
    env = {**real.env, "SEED_DIGEST_API_LOST_SECONDS": "45"}
    command = [sys.executable, "-m", "flows.cli", "run", "--source", str(seeds), "--data", str(data),
               "--batch-size", "40", "--no-progress"]

    def start_run() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    try:
        run = start_run()
        wait_for_task_runs(env, 0, run)
        real.stop()
        time.sleep(9)
        real.start()
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
        assert "600" in out

        write_articles(seeds, range(600, 700), topic="new topic", parts=3)
        run = start_run()
        wait_for_task_runs(env, api(env, "POST", "/task_runs/count", {}), run)
        real.stop()
        stopped = time.monotonic()
        out, err = run.communicate(timeout=300)
        assert run.returncode == 1
        assert time.monotonic() - stopped < 45 + 30
        last_line = err.strip().splitlines()[-1]  # Prefect's client gave up first, or the run's watch did
        assert last_line.startswith("error:") and "Prefect API at" in last_line, err

        real.start()
        run = start_run()
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
    finally:
        if real.process.poll() is None:
            real.stop()
    tables = {table: pl.read_parquet(data / table / "*" / "*.parquet") for table in ("documents", "duplicates",
                                                                                       "rejects", "runs")}
    ids = pl.concat([tables[table].select("input_id") for table in ("documents", "duplicates", "rejects")])
    assert ids.height == ids.n_unique() == 700
    assert tables["runs"]["inputs"].sum() == 700 and tables["runs"].height == 2


def test_serve_and_deploy_share_a_server_without_breaking_each_other(server, tmp_path):
    """A served deployment runs end to end; stopping serve leaves the worker's deployments whole and scheduled."""
    import signal

    seeds, data = tmp_path / "seeds", tmp_path / "data"
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    prefect(server, "work-pool", "create", "seed-digest", "--type", "process", "--overwrite")
    prefect(server, "--no-prompt", "deploy", "--all")
    deployed = api(server, "GET", "/deployments/name/seed-digest/daily")

    serving = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve"], cwd=REPO, env=server,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                served = api(server, "GET", "/deployments/name/seed-digest/daily-served")
                break
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline and serving.poll() is None, "serve registered nothing"
                time.sleep(0.5)
        run = api(server, "POST", f"/deployments/{served['id']}/create_flow_run",
                  {"parameters": {"source": str(seeds), "data_dir": str(data)}})
        state = final_state(server, run["id"])
        assert state["type"] == "COMPLETED", state
        assert pl.read_parquet(data / "summaries" / "*" / "*.parquet").height == 1
        assert_cancelling_a_served_run_ends_it_and_its_workers(server, serving, served, tmp_path)
    finally:
        serving.send_signal(signal.SIGINT)
        serving.wait(timeout=60)

    after = api(server, "GET", "/deployments/name/seed-digest/daily")
    assert after["id"] == deployed["id"] and after["path"] == deployed["path"]
    assert after["pull_steps"] == deployed["pull_steps"] and not after["paused"]
    assert all(schedule["active"] for schedule in after["schedules"])
    run = api(server, "POST", f"/deployments/{after['id']}/create_flow_run",
              {"parameters": {"source": str(seeds), "data_dir": str(tmp_path / "worker-data")}})
    worker = subprocess.run([PREFECT, "worker", "start", "--pool", "seed-digest", "--run-once"], env=server,
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert api(server, "GET", f"/flow_runs/{run['id']}")["state"]["type"] == "COMPLETED", worker.stdout + worker.stderr


def has_workers(pid: int) -> bool:
    """Whether a live process under `pid` is a pool worker."""
    import psutil

    return any("spawn_main" in line for line in alive(psutil.Process(pid).children(recursive=True)))


def assert_cancelling_a_served_run_ends_it_and_its_workers(env: dict, serving: subprocess.Popen, served: dict,
                                                          tmp_path: Path) -> None:
    """Prefect's cancellation of a running run: serve stops its process, which kills its pool workers; data/'s
    lock and the deployment's concurrency slot are free at once, and the next run does the whole work."""
    from tasks.store import exclusive

    seeds, data = tmp_path / "many", tmp_path / "many-data"
    write_articles(seeds, range(400))
    run = api(env, "POST", f"/deployments/{served['id']}/create_flow_run",
              {"parameters": {"source": str(seeds), "data_dir": str(data), "batch_size": 20}})
    deadline = time.monotonic() + 180
    while not has_workers(serving.pid):
        assert time.monotonic() < deadline, "the served run started no workers"
        time.sleep(0.2)
    api(env, "POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "CANCELLING"}, "force": True})
    cancelled = time.monotonic()
    while api(env, "GET", f"/flow_runs/{run['id']}")["state"]["type"] != "CANCELLED":
        assert time.monotonic() - cancelled < 90, api(env, "GET", f"/flow_runs/{run['id']}")["state"]
        time.sleep(0.5)
    while has_workers(serving.pid):
        assert time.monotonic() - cancelled < 120, "the cancelled run's workers are still alive"
        time.sleep(0.5)
    with exclusive(data, 0):
        pass
    assert not list(data.glob("runs/*/*.parquet"))  # nothing of it committed

    again = api(env, "POST", f"/deployments/{served['id']}/create_flow_run",  # its concurrency slot is free
                {"parameters": {"source": str(seeds), "data_dir": str(data), "batch_size": 100}})
    state = final_state(env, again["id"])
    assert state["type"] == "COMPLETED", state
    assert pl.read_parquet(data / "runs" / "*" / "*.parquet")["inputs"].to_list() == [400]
