"""Write and read the Parquet store in data/: one zstd part file per table and run, Hive-partitioned by run date.

A run's files appear only whole (each is written under a hidden temporary name, then renamed), and the run's
row in `runs` is written last: it is the commit. Part files of runs that never committed (a crash between
files) are removed by the next run before it reads the store, so readers and re-runs only see whole runs.
"""

import json
import os
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import filelock
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.schema import EVALUATION_SCHEMAS, SCHEMAS

LOCK_NAME = ".seed-digest.lock"
PART_PREFIX = "part-"  # one run's rows: part-<run_id>.parquet, committed once the run's runs row exists
COMPACT_PREFIX = "compact-"  # many runs' rows, written by compaction: always committed
MANIFEST_NAME = ".compaction.json"


class StoreBusy(RuntimeError):
    """Another run holds the data directory."""


def new_run_id(started) -> str:
    return f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def table_files(data_dir: str | Path, table: str) -> list[Path]:
    folder = Path(data_dir, table)
    return sorted([*folder.glob(f"run_date=*/{PART_PREFIX}*.parquet"),
                   *folder.glob(f"run_date=*/{COMPACT_PREFIX}*.parquet")])


def _run_of(path: Path) -> str | None:
    return path.stem[len(PART_PREFIX):] if path.name.startswith(PART_PREFIX) else None


@contextmanager
def exclusive(data_dir: str | Path, timeout: float):
    """Hold data/'s lock for a whole run, so two runs never interleave their writes."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(Path(data_dir, LOCK_NAME)))
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise StoreBusy(f"another seed-digest run is writing to {data_dir} (lock {lock.lock_file}); "
                        f"waited {timeout:g}s. Try again when it has finished.") from None
    try:
        yield
    finally:
        lock.release()


def committed_runs(data_dir: str | Path) -> set[str]:
    files = table_files(data_dir, "runs")
    if not files:
        return set()
    return set(pl.read_parquet(files, columns=["run_id"])["run_id"].to_list())


def remove_uncommitted(data_dir: str | Path) -> list[Path]:
    """Make the store whole before reading it: finish an interrupted compaction, then delete part files (and
    temporaries) of runs that never wrote their runs row."""
    finish_replacement(data_dir)
    committed = committed_runs(data_dir)
    removed = []
    for table in SCHEMAS:
        for path in table_files(data_dir, table):
            if _run_of(path) is not None and _run_of(path) not in committed:
                path.unlink()
                removed.append(path)
        for temporary in Path(data_dir, table).glob("run_date=*/.*.tmp"):
            temporary.unlink()
            removed.append(temporary)
    return removed


def read_table(data_dir: str | Path, table: str, columns: list[str]) -> pl.DataFrame:
    """Columns of a table across all committed files, `run_date` among them if asked for (empty, with the
    schema's types, before the first run); a column added to the schema later reads as null in older files."""
    files = table_files(data_dir, table)
    schema = pl.from_arrow(SCHEMAS[table].empty_table()).schema
    if files:
        return pl.scan_parquet(files, schema=schema, hive_partitioning=True, hive_schema={"run_date": pl.Date},
                               missing_columns="insert").select(columns).collect()
    return pl.DataFrame(schema={**schema, "run_date": pl.Date}).select(columns)


def recorded_inputs(data_dir: str | Path) -> set[str]:
    """input_ids already accounted for in documents, duplicates or rejects."""
    ids: set[str] = set()
    for table in ("documents", "duplicates", "rejects"):
        ids.update(read_table(data_dir, table, ["input_id"])["input_id"].to_list())
    return ids


def canonical_signatures(data_dir: str | Path) -> pl.DataFrame:
    return read_table(data_dir, "documents", ["input_id", "text_hash", "minhash"])


def to_arrow(frame: pl.DataFrame, table: str) -> pa.Table:
    """The frame with exactly the table's columns, order and types: a wrong column fails loudly here."""
    schema = {**SCHEMAS, **EVALUATION_SCHEMAS}[table]
    return frame.select(schema.names).to_arrow().cast(schema)


def _write_temporary(folder: Path, name: str, table: str, frame: pl.DataFrame) -> tuple[Path, Path]:
    """A hidden, synced temporary file holding the rows, and the final path it is meant for."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    temporary = folder / f".{name}.tmp"
    pq.write_table(to_arrow(frame, table), temporary, compression="zstd")
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    return temporary, final


def write_part(data_dir: str | Path, table: str, frame: pl.DataFrame, run_id: str, run_date: date) -> Path:
    """Write one run's rows of one table atomically: temporary hidden file, fsync, rename."""
    folder = Path(data_dir, table, f"run_date={run_date.isoformat()}")
    temporary, final = _write_temporary(folder, f"{PART_PREFIX}{run_id}.parquet", table, frame)
    os.replace(temporary, final)
    return final


def replace_tables(data_dir: str | Path, tables: dict[str, pl.DataFrame], stamp: str) -> list[Path]:
    """Replace every file of the given tables with one compacted file per run_date partition, all or nothing.

    Frames carry a `run_date` column. New files are written as temporaries first; then a manifest naming the
    renames and deletions is written atomically, and carried out. A crash before the manifest leaves the old
    files (the temporaries are swept); a crash after it is finished by the next run (`finish_replacement`).
    """
    renames, old = [], []
    for table, frame in tables.items():
        old += [str(path) for path in table_files(data_dir, table)]
        for (run_date,), rows in frame.group_by("run_date", maintain_order=True):
            folder = Path(data_dir, table, f"run_date={run_date.isoformat()}")
            temporary, final = _write_temporary(folder, f"{COMPACT_PREFIX}{stamp}.parquet", table, rows)
            renames.append((str(temporary), str(final)))
    manifest = Path(data_dir, MANIFEST_NAME)
    staged = manifest.with_name(manifest.name + ".tmp")
    staged.write_text(json.dumps({"renames": renames, "delete": old}))
    os.replace(staged, manifest)
    finish_replacement(data_dir)
    return [Path(final) for _, final in renames]


def finish_replacement(data_dir: str | Path) -> None:
    """Carry out a compaction manifest, if one is left: idempotent, so a crash midway is finished here."""
    manifest = Path(data_dir, MANIFEST_NAME)
    if not manifest.exists():
        return
    plan = json.loads(manifest.read_text())
    for temporary, final in plan["renames"]:
        if Path(temporary).exists():
            os.replace(temporary, final)
    for path in plan["delete"]:
        Path(path).unlink(missing_ok=True)
    manifest.unlink()


def write_run(data_dir: str | Path, run_id: str, run_date: date, tables: dict[str, pl.DataFrame]) -> list[Path]:
    """All tables of a run, the runs row last so that the run counts only once everything is in place."""
    order = [name for name in SCHEMAS if name != "runs"] + ["runs"]
    return [write_part(data_dir, name, tables[name].with_columns(pl.lit(run_id).alias("run_id")), run_id, run_date)
            for name in order]


@task(name="write-parquet", cache_policy=NO_CACHE)
def write_run_task(data_dir: str, run_id: str, run_date: date, tables: dict[str, pl.DataFrame]) -> list[Path]:
    return write_run(data_dir, run_id, run_date, tables)
