"""A real Prefect server on loopback: deploy prefect.yaml, trigger a run through the REST API, a process worker
runs it, and the test reads the Parquet it wrote."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, SEED

PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(env: dict, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(env["PREFECT_API_URL"] + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or "null")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    log = open(home / "server.log", "w")
    process = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                api(env, "GET", "/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "server.log").read_text()) from None
                time.sleep(0.5)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


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
