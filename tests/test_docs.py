"""The README stays true to the code: every table column is documented, CI runs the README's test command, and
the table examples run as written."""

import re

import pytest

from tasks.schema import EVALUATION_SCHEMAS, SCHEMAS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_column_of_every_table():
    documented = set(re.findall(r"`([A-Za-z_0-9]+)`", README))
    missing = {f"{table}.{name}" for table, schema in {**SCHEMAS, **EVALUATION_SCHEMAS}.items() for name in schema.names
               if name not in documented}
    assert not missing


def test_ci_runs_the_readme_test_command():
    command = next(line for line in README.splitlines() if line.endswith("python -m pytest -q"))
    assert command in (REPO / ".ci" / "run").read_text()


def code_blocks(language: str, after: str) -> list[str]:
    """The README's fenced blocks of a language, from the section headed `after` on."""
    section = README[README.index(after):]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


@pytest.mark.usefixtures("prefect_server")
def test_the_readme_table_examples_run_as_written_on_a_store_and_after_compaction(tmp_path, monkeypatch):
    import duckdb

    from flows.compact import compact
    from flows.digest import digest
    from tests.conftest import SEED

    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "seed.txt").write_bytes(SEED.read_bytes())
    monkeypatch.chdir(tmp_path)  # the examples name data/ relative to where they run
    digest(source="seeds", data_dir="data")
    sql, = code_blocks("sql", "## The Parquet tables")[:1]
    python = code_blocks("python", "## The Parquet tables")[0]
    for store in ("after a run", "after compaction"):
        rows = duckdb.sql(sql.replace("-- DuckDB\n", "")).fetchall()
        assert len(rows) == 1 and rows[0][0].startswith("US General"), store
        namespace: dict = {}
        exec(python, namespace)
        assert namespace["documents"].height == 1 and len(namespace["runs"]) == 1, store
        for table in ("duplicates", "rejects"):  # empty tables, read the README's way
            assert duckdb.sql(f"SELECT count(*) FROM read_parquet('data/{table}/*/*.parquet', "
                              "hive_partitioning = true)").fetchall() == [(0,)]
        compact(data_dir="data")
