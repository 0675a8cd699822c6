"""The README's run command path: `seed-digest run` on a fresh Prefect home, its output and exit codes."""

import gc
import os
import subprocess
import sys

import polars as pl

from tests.conftest import SEED


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "flows.cli", "run", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_cli_runs_on_a_fresh_prefect_home_without_tracebacks(tmp_path):
    seeds, data, home = tmp_path / "seeds", tmp_path / "data", tmp_path / "prefect-home"
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    first = run_cli("--source", str(seeds), "--data", str(data), "--ratio", "0.25", home=home)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    assert "documents" in first.stdout and "│     1 │" in first.stdout
    summaries = pl.read_parquet(data / "summaries" / "*" / "*.parquet")
    assert summaries["ratio"].to_list() == [0.25] and len(summaries["sentences"][0]) == 3

    again = run_cli("--source", str(seeds), "--data", str(data), home=home)
    assert again.returncode == 0 and "nothing new" in again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    # No Prefect API is configured: the run was not a flow run, and no Prefect server made a database
    assert pl.read_parquet(data / "runs" / "*" / "*.parquet")["flow_run_id"].to_list() == [None]
    assert not list(home.glob("*.db"))


def test_a_credentials_block_without_a_prefect_api_is_told_in_one_line(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    refused = run_cli("--source", str(seeds), "--data", str(tmp_path / "data"), "--credentials-block", "store",
                      home=tmp_path / "h")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: --credentials-block store names a Prefect Secret block, which is read "
                                     "through a Prefect API, and Prefect's settings name none"), refused.stderr
    assert not (tmp_path / "data" / "runs").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    bad = run_cli("--source", str(tmp_path / "missing"), "--data", str(tmp_path / "data"), home=tmp_path / "h")
    assert bad.returncode == 1
    assert "error: seed source" in bad.stderr and "Traceback" not in bad.stderr
    usage = run_cli("--algorithm", "nope", home=tmp_path / "h")
    assert usage.returncode == 2 and "unknown --algorithm 'nope'" in usage.stderr
    markup = run_cli("--source", str(tmp_path / "gone[/x]"), "--data", str(tmp_path / "data"), home=tmp_path / "h")
    assert markup.returncode == 1 and "Traceback" not in markup.stderr  # a path is text, not rich markup
    assert markup.stderr.startswith("error: seed source") and "gone[/x]" in markup.stderr, markup.stderr


def test_a_run_that_ends_before_it_starts_gives_a_python_caller_its_collector_back(tmp_path, monkeypatch):
    from flows.cli import PREFECT_DEFAULTS, main

    for name, value in PREFECT_DEFAULTS.items():  # main sets them in this process: undone at the test's end
        monkeypatch.setenv(name, value)
    assert main(["run", "--data", str(tmp_path / "data"), "--batch-size", "0"]) == 2  # told before any work
    assert gc.isenabled()


def test_serve_offers_prefect_yamls_deployments_with_their_schedules():
    from flows.cli import served_deployments
    from tests.conftest import REPO

    deployments = {d.name: d for d in served_deployments(str(REPO / "prefect.yaml"))}
    assert set(deployments) == {"daily-served", "weekly-compaction-served"}
    daily = deployments["daily-served"]
    assert daily.flow_name == "seed-digest" and daily.parameters["source"] == "seeds"
    assert [s.schedule.cron for s in daily.schedules] == ["0 6 * * *"]
    assert daily.concurrency_limit == 1 or daily.concurrency_limit.limit == 1
    assert [s.schedule.cron for s in deployments["weekly-compaction-served"].schedules] == ["0 3 * * 0"]


def test_cli_checks_its_options_in_its_own_words(tmp_path):
    home, data = tmp_path / "h", tmp_path / "data"
    cases = {
        ("--lock-timeout", "-5"): "--lock-timeout must be 0",
        ("--source", ""): "--source is empty",
        ("--batch-size", "0"): "--batch-size must be at least 1",
        ("--language", "xx"): "--language 'xx' is not an ISO 639-1 code",
        ("--near-duplicate-threshold", "1.5"): "--near-duplicate-threshold must be in (0, 1]",
    }
    for options, message in cases.items():
        answer = run_cli("--data", str(data), *options, home=home)
        assert answer.returncode == 2 and message in answer.stderr, (options, answer.stderr)
    afile = tmp_path / "afile"
    afile.write_text("")
    answer = run_cli("--data", str(afile), home=home)
    assert answer.returncode == 2 and "is a file, not a folder" in answer.stderr
    answer = run_cli("--source", str(tmp_path / "*.nothing"), "--data", str(data), home=home)
    assert answer.returncode == 1 and "matches no file" in answer.stderr


def test_a_held_data_folder_is_answered_after_the_lock_timeout_and_the_message_is_the_last_line(tmp_path):
    import time

    from tasks.store import exclusive

    seeds, data = tmp_path / "seeds", tmp_path / "data"
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    with exclusive(data, 0):
        for timeout in ("0", "2"):
            began = time.monotonic()
            busy = run_cli("--source", str(seeds), "--data", str(data), "--lock-timeout", timeout, home=tmp_path / "h")
            assert busy.returncode == 1
            assert time.monotonic() - began < float(timeout) + 15
            assert busy.stderr.strip().splitlines()[-1].startswith("error: another seed-digest run is writing")
            assert busy.stdout == ""


def one_document_corpus(path):
    import json

    from tests.conftest import article

    text = article("the dam", 5) + "\n\n" + article("the dam budget", 5)
    path.write_text(json.dumps({"id": "d1", "text": text, "reference": text.split(". ")[0] + "."}) + "\n",
                    encoding="utf-8")
    return path


def test_cli_evaluates_a_one_document_corpus_without_a_prefect_server(tmp_path):
    corpus, home = one_document_corpus(tmp_path / "one.jsonl"), tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "flows.cli", "evaluate", "--corpus", str(corpus), "--data", str(tmp_path / "d")]
    done = subprocess.run([*command, "--algorithms", "lead,newsrank"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "| **lead3** (baseline) |" in done.stdout
    assert not list(home.glob("*.db"))  # Prefect's settings were read (no API configured); no server started
    scores = pl.read_parquet(tmp_path / "d" / "evaluation_scores" / "*" / "*.parquet")
    assert sorted(scores.select("algorithm", "length").rows()) == [
        ("lead", "reference words"), ("lead3", "3 sentences"), ("newsrank", "3 sentences"),
        ("newsrank", "reference words")]
    assert set(scores["doc_id"]) == {"d1"}
    assert [p.read_text() for p in (tmp_path / "d" / "reports").glob("evaluation-*.md")] == [done.stdout[:-1]]
    refused = subprocess.run([*command, "--algorithms", "nope"], capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2 and "unknown algorithm(s) nope" in refused.stderr
    corpus.write_text('{"id": "d2", "text": "A text."}\n', encoding="utf-8")  # no reference: told before any run
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2 and "line 1: a record needs JSON with text and reference" in refused.stderr


def test_cli_evaluation_is_a_flow_run_on_the_server_prefect_api_url_names(tmp_path, prefect_server):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL

    corpus = one_document_corpus(tmp_path / "one.jsonl")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "evaluate", "--corpus", str(corpus), "--data",
                           str(tmp_path / "d"), "--algorithms", "lead"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "| **lead3** (baseline) |" in done.stdout
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["seed-digest-evaluate"])))
        assert any(run.parameters.get("corpus") == str(corpus) and run.state.is_completed() for run in runs)


def test_an_api_that_the_prefect_profile_names_and_that_does_not_answer_is_told_in_one_line(tmp_path):
    home = tmp_path / "prefect-home"
    home.mkdir()
    (home / "profiles.toml").write_text('active = "gone"\n[profiles.gone]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n',
                                        encoding="utf-8")
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed.txt").write_bytes(SEED.read_bytes())
    commands = {"run": ["run", "--source", str(seeds), "--data", str(tmp_path / "data"), "--no-progress"],
                "evaluate": ["evaluate", "--corpus", str(one_document_corpus(tmp_path / "one.jsonl")), "--data",
                             str(tmp_path / "evaluation"), "--algorithms", "lead"]}
    for name, arguments in commands.items():
        failed = subprocess.run([sys.executable, "-m", "flows.cli", *arguments], capture_output=True, text=True,
                                env=env, timeout=600)
        assert failed.returncode == 1, (name, failed.stderr)
        assert "Traceback" not in failed.stderr, (name, failed.stderr)
        assert failed.stderr.strip().splitlines()[-1].startswith(
            "error: no answer from the Prefect API at http://127.0.0.1:9/api, which Prefect's settings name"), name
    assert not list(home.glob("*.db"))  # no Prefect server of the command's own made a database
