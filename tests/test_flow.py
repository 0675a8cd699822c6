"""The flow end to end under Prefect's test harness, its Parquet read back with DuckDB and polars."""

import json

import duckdb
import filelock
import polars as pl
import pytest

from flows.digest import digest
from tasks.store import LOCK_NAME, StoreBusy
from tests.conftest import TABLE_KEYS, article, written_rows

pytestmark = pytest.mark.usefixtures("prefect_server")


def scan(data, table: str) -> pl.DataFrame:
    return pl.scan_parquet(f"{data}/{table}/**/*.parquet", hive_partitioning=True).collect()


def sql(data, query: str):
    for table in ("documents", "summaries", "duplicates", "rejects", "runs"):
        query = query.replace("{" + table + "}",
                              f"read_parquet('{data}/{table}/*/*.parquet', hive_partitioning = true)")
    return duckdb.sql(query).fetchall()


def test_end_to_end_accounts_for_every_input(corpus, tmp_path, seed_text):
    data = tmp_path / "data"
    report = digest(source=str(corpus), data_dir=str(data), batch_size=4)
    assert (report.inputs, report.documents, report.duplicates, report.rejects, report.summaries) == (13, 6, 2, 5, 6)
    assert not (data / ".spill").exists()  # nothing for the next run to report as left behind

    runs = sql(data, "select inputs, documents, duplicates, rejects, summaries, files, run_date = current_date "
                     "from {runs}")
    assert runs == [(13, 6, 2, 5, 6, 11, True)]
    accounted = sql(data, "select count(*) from (select input_id from {documents} union all "
                          "select input_id from {duplicates} union all select input_id from {rejects})")
    assert accounted == [(13,)]

    documents = scan(data, "documents")
    assert documents["input_id"].n_unique() == 6
    seed = documents.filter(pl.col("path") == "a_seed.txt").row(0, named=True)
    assert seed["title"] == "US General: Our forces remain in Iraq, and Al-Kazemi needs support"
    assert seed["boilerplate"] == ["Rawabet Center", "In Rawabet Center", "Source"]
    assert "Rawabet" not in seed["text"] and not seed["text"].endswith("Source")
    encodings = dict(documents.select("path", "encoding").iter_rows())
    assert encodings["d_latin.txt"] == "cp1252" and encodings["e_utf16.txt"] == "utf-16-le"
    assert "Café owners in Zürich" in documents.filter(pl.col("path") == "d_latin.txt")["text"][0]
    assert documents.filter(pl.col("path") == "f_page.html")["title"][0] == "Harbour plan approved"
    assert documents.filter(pl.col("path") == "h_feed.jsonl")["record"].to_list() == [0]

    summary = sql(data, "select s.summary, s.sentences, d.text from {summaries} s join {documents} d "
                        "on s.doc_id = d.input_id where d.path = 'a_seed.txt'")
    text_, sentences, body = summary[0]
    assert len(sentences) == 3 and "Rawabet" not in text_ and "Source" not in text_
    for sentence in sentences:
        assert body[sentence["start"]:sentence["end"]] == sentence["text"]
        assert sentence["text"] in seed_text

    duplicates = dict((row[0], row[1:]) for row in sql(
        data, "select path, canonical_id, method, similarity from {duplicates} order by path"))
    assert duplicates["b_seed_copy.txt"] == (seed["input_id"], "exact", 1.0)
    assert duplicates["c_seed_near.txt"][:2] == (seed["input_id"], "near")
    assert 0.8 <= duplicates["c_seed_near.txt"][2] < 1.0

    rejects = sorted(sql(data, "select path, record, reason from {rejects}"), key=str)
    assert rejects == sorted([("h_feed.jsonl", 1, "no_text"), ("h_feed.jsonl", 2, "invalid_json"),
                              ("i_empty.txt", None, "empty"), ("j_binary.txt", None, "binary"),
                              ("k_one_sentence.txt", None, "too_short")], key=str)
    assert all(detail for (detail,) in sql(data, "select detail from {rejects}"))


def test_a_run_without_prefect_writes_what_the_flow_writes(corpus, tmp_path):
    """With no Prefect API configured, `seed-digest run` hands the flow's batch steps to the pool from threads of
    its own (flows/digest_steps.py): the same rows in every table; its runs row names no flow run."""
    import logging

    from flows.digest_steps import digest_in_threads
    from flows.plan import plan

    flow_data, plain_data = tmp_path / "flow", tmp_path / "plain"
    digest(source=str(corpus), data_dir=str(flow_data), batch_size=3)
    run_plan = plan(str(corpus), str(plain_data), "newsrank", 3, None, None, None, 3, 2, 0.8)
    report = digest_in_threads(run_plan, logging.getLogger("test"), 0.0, None, None, False)
    assert (report.inputs, report.documents, report.duplicates, report.rejects, report.summaries) == (13, 6, 2, 5, 6)
    for name, key in TABLE_KEYS:
        assert written_rows(flow_data, name, key).equals(written_rows(plain_data, name, key)), name
    runs = {data: scan(data, "runs").row(0, named=True) for data in (flow_data, plain_data)}
    assert runs[flow_data]["flow_run_id"] is not None and runs[plain_data]["flow_run_id"] is None
    counts = ("files", "inputs", "documents", "duplicates", "rejects", "summaries")
    assert [runs[flow_data][c] for c in counts] == [runs[plain_data][c] for c in counts]


def test_rerun_adds_no_rows_and_new_files_are_added_alone(corpus, tmp_path):
    data = tmp_path / "data"
    digest(source=str(corpus), data_dir=str(data))
    files_before = sorted(p.relative_to(data) for p in data.rglob("*.parquet"))

    again = digest(source=str(corpus), data_dir=str(data))
    assert again.run_id is None and again.inputs == 0 and again.already_recorded == 13
    assert sorted(p.relative_to(data) for p in data.rglob("*.parquet")) == files_before

    (corpus / "z_new.txt").write_text(article("the new stadium", 5))
    third = digest(source=str(corpus), data_dir=str(data))
    assert (third.inputs, third.documents, third.already_recorded) == (1, 1, 13)
    assert scan(data, "documents").height == 7 and scan(data, "runs").height == 2
    assert scan(data, "summaries")["doc_id"].n_unique() == 7


def test_parts_of_an_unfinished_run_are_removed_before_the_next(corpus, tmp_path):
    data = tmp_path / "data"
    crashed = "20260101T000000Z-0badc0de"  # a run that died while publishing its staged batches
    orphan = data / "documents" / "run_date=2026-01-01" / f"part-{crashed}-00001.parquet"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"PAR1 half written")
    temporary = orphan.parent / f".part-{crashed}-00002.parquet.tmp"
    temporary.write_bytes(b"PAR1")
    digest(source=str(corpus), data_dir=str(data))
    assert not orphan.exists() and not temporary.exists()
    assert scan(data, "documents").height == 6


def test_a_second_run_on_the_same_data_fails_clearly_while_the_first_holds_it(corpus, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with filelock.FileLock(str(data / LOCK_NAME)):
        with pytest.raises(StoreBusy, match="another seed-digest run is writing"):
            digest(source=str(corpus), data_dir=str(data), lock_timeout=0.2)
    assert not list(data.rglob("*.parquet"))


def test_bad_parameters_fail_before_any_work(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown algorithm"):
        digest(source=str(corpus), data_dir=str(tmp_path / "data"), algorithm="bogus")
    assert not (tmp_path / "data").exists()


def latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)
    return found[0]


def test_each_run_publishes_counts_timings_and_a_report_with_sample_summaries(corpus, tmp_path):
    report = digest(source=str(corpus), data_dir=str(tmp_path / "data"))
    counts = {row["measure"]: row["count"] for row in json.loads(latest_artifact("seed-digest-counts").data)}
    assert counts == {"files": 11, "fetched": 11, "skipped": 0, "already recorded": 0, "inputs": 13, "documents": 6,
                      "duplicates": 2, "rejects": 5, "summaries": 6}
    stages = [row["stage"] for row in json.loads(latest_artifact("seed-digest-timings").data)]
    assert stages == ["ingest", "clean", "deduplicate", "summarize", "write"]
    markdown = latest_artifact("seed-digest-report").data
    assert f"seed-digest run `{report.run_id}`" in markdown
    assert "Rejects by reason: binary 1, empty 1, invalid_json 1, no_text 1, too_short 1" in markdown
    assert markdown.count("\n## ") == 3 and "\n> " in markdown

    digest(source=str(corpus), data_dir=str(tmp_path / "data"))
    assert "nothing new" in latest_artifact("seed-digest-report").data

