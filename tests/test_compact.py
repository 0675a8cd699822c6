"""Weekly compaction: re-deduplication across runs, one file per partition, atomic and loss-free."""

import polars as pl
import pytest

from flows.compact import compact
from flows.digest import digest
from tasks.store import MANIFEST_NAME, table_files
from tests.conftest import SEED, article

pytestmark = pytest.mark.usefixtures("prefect_server")


def read(data, table: str) -> pl.DataFrame:
    return pl.read_parquet(f"{data}/{table}/*/*.parquet")


def test_compaction_finds_duplicates_a_stricter_run_missed_and_loses_no_input(corpus, tmp_path):
    data = tmp_path / "data"
    digest(source=str(corpus), data_dir=str(data), near_duplicate_threshold=0.999)  # near copy kept
    (corpus / "z_later_copy.txt").write_bytes(SEED.read_bytes().replace(b"more than 5,000", b"over 5,000"))
    digest(source=str(corpus), data_dir=str(data), near_duplicate_threshold=0.999)
    before = {t: read(data, t) for t in ("documents", "duplicates", "rejects", "summaries", "runs")}
    assert before["documents"].height == 8 and len(table_files(data, "documents")) == 2

    report = compact(data_dir=str(data), near_duplicate_threshold=0.8)
    after = {t: read(data, t) for t in before}
    assert (report.demoted, report.documents, report.summaries_removed) == (2, 6, 2)
    assert [len(table_files(data, t)) for t in before] == [1] * 5
    assert after["runs"].equals(before["runs"]) and after["rejects"].height == before["rejects"].height
    accounted = pl.concat([after[t].select("input_id") for t in ("documents", "duplicates", "rejects")])
    assert accounted["input_id"].sort().equals(
        pl.concat([before[t].select("input_id") for t in ("documents", "duplicates", "rejects")])["input_id"].sort())
    seed_id = after["documents"].filter(pl.col("path") == "a_seed.txt")["input_id"][0]
    near = after["duplicates"].filter(pl.col("path").is_in(["c_seed_near.txt", "z_later_copy.txt"]))
    assert near["canonical_id"].to_list() == [seed_id, seed_id] and near["method"].to_list() == ["near", "near"]
    assert after["summaries"]["doc_id"].is_in(after["documents"]["input_id"].implode()).all()

    again = digest(source=str(corpus), data_dir=str(data))
    assert again.run_id is None and again.already_recorded == 14


def test_a_replacement_interrupted_after_its_manifest_is_finished_by_the_next_reader(tmp_path):
    import json

    from tasks.store import finish_replacement

    partition = tmp_path / "runs" / "run_date=2026-01-01"
    partition.mkdir(parents=True)
    (partition / "part-r1.parquet").write_bytes(b"old")
    (partition / ".compact-x.parquet.tmp").write_bytes(b"new")
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({
        "renames": [[str(partition / ".compact-x.parquet.tmp"), str(partition / "compact-x.parquet")]],
        "delete": [str(partition / "part-r1.parquet")]}))
    finish_replacement(tmp_path)
    assert [p.name for p in partition.iterdir()] == ["compact-x.parquet"]
    assert (partition / "compact-x.parquet").read_bytes() == b"new"
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_files_written_before_a_column_was_added_compact_with_it_as_null(corpus, tmp_path):
    data = tmp_path / "data"
    digest(source=str(corpus), data_dir=str(data))
    [part] = table_files(data, "summaries")
    read(data, "summaries").drop("words_requested").write_parquet(part)  # as an older release wrote it
    (corpus / "z_new.txt").write_text(article("the harbour", 6), encoding="utf-8")
    digest(source=str(corpus), data_dir=str(data), words=40)

    compact(data_dir=str(data))
    summaries = read(data, "summaries")
    assert summaries["words_requested"].value_counts(sort=True).rows() == [(None, 6), (40, 1)]


def test_after_compaction_every_table_still_has_a_file_with_its_schema(tmp_path):
    import duckdb

    from tasks.schema import SCHEMAS

    seeds, data = tmp_path / "seeds", tmp_path / "data"
    seeds.mkdir()
    for topic in ("the bridge", "the harbour"):
        (seeds / f"{topic[4:]}.txt").write_text(article(topic), encoding="utf-8")
    digest(source=str(seeds), data_dir=str(data))
    compact(data_dir=str(data))
    for table in ("duplicates", "rejects"):
        assert len(table_files(data, table)) == 1
        assert read(data, table).height == 0
        columns = duckdb.sql(f"SELECT * FROM read_parquet('{data}/{table}/*/*.parquet', hive_partitioning=true)")
        assert set(columns.columns) == set(SCHEMAS[table].names) | {"run_date"}
    assert read(data, "documents").height == 2
