"""Write and read the Parquet store in data/: zstd part files per table and run, Hive-partitioned by run date.

A run writes its rows batch by batch as hidden temporary files (`StagedRun`), which no reader's glob matches;
at the end it renames them into place and writes its row in `runs` last: that row is the commit. Part files
of runs that never committed (a crash between renames) and temporaries are removed by the next run before it
reads the store, so readers and re-runs only see whole runs.
"""

import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import filelock
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.schema import EVALUATION_SCHEMAS, SCHEMAS

# Arrow's default allocator (jemalloc) keeps the pages it frees for reuse. A run converts and writes one batch
# after another for its whole length, and with the system allocator, which gives them back, the run's process
# peaks about 20 MiB lower at 20,000 files.
pa.set_memory_pool(pa.system_memory_pool())

LOCK_NAME = ".seed-digest.lock"
PART_PREFIX = "part-"  # one run's rows: part-<run_id>.parquet, committed once the run's runs row exists
COMPACT_PREFIX = "compact-"  # many runs' rows, written by compaction: always committed
MANIFEST_NAME = ".compaction.json"
SPILL_FOLDER = ".spill"  # a running run's intermediate batches, removed when it ends
PART_NAME = re.compile(rf"^{PART_PREFIX}(\d{{8}}T\d{{6}}Z-[0-9a-f]{{8}})(?:-\d+)?\.parquet$")


class StoreBusy(RuntimeError):
    """Another run holds the data directory."""


def new_run_id(started) -> str:
    return f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def table_files(data_dir: str | Path, table: str) -> list[Path]:
    folder = Path(data_dir, table)
    return sorted([*folder.glob(f"run_date=*/{PART_PREFIX}*.parquet"),
                   *folder.glob(f"run_date=*/{COMPACT_PREFIX}*.parquet")])


def _run_of(path: Path) -> str | None:
    """The run a part file belongs to: part-<run_id>.parquet or part-<run_id>-<batch>.parquet (any other part
    file's name stands for a run that never committed); None for compacted files."""
    if not path.name.startswith(PART_PREFIX):
        return None
    match = PART_NAME.match(path.name)
    return match.group(1) if match else path.stem


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
    if Path(data_dir, SPILL_FOLDER).exists():
        shutil.rmtree(Path(data_dir, SPILL_FOLDER))
        removed.append(Path(data_dir, SPILL_FOLDER))
    return removed


def scan_files(files: list[Path], table: str) -> pl.LazyFrame:
    """Files of a table, in the order given, with `run_date` and the schema's types; a column added to the schema
    later reads as null in older files."""
    schema = pl.from_arrow(SCHEMAS[table].empty_table()).schema
    return pl.scan_parquet(files, schema=schema, hive_partitioning=True, hive_schema={"run_date": pl.Date},
                           missing_columns="insert")


def read_table(data_dir: str | Path, table: str, columns: list[str]) -> pl.DataFrame:
    """Columns of a table across all committed files (empty, with the schema's types, before the first run)."""
    files = table_files(data_dir, table)
    if files:
        return scan_files(files, table).select(columns).collect()
    schema = pl.from_arrow(SCHEMAS[table].empty_table()).schema
    return pl.DataFrame(schema={**schema, "run_date": pl.Date}).select(columns)


BANDED_ORDER_OFFSET = 1 << 40  # files with lsh_bands were written after every file without it


def documents_history(data_dir: str | Path) -> list[pl.LazyFrame]:
    """What deduplication needs of the stored canonical documents, in their order: one part for files with the
    lsh_bands column and, for files written before it existed, one without (their bands are computed)."""
    files = table_files(data_dir, "documents")
    banded = [path for path in files if "lsh_bands" in pq.read_schema(path).names]
    parts = []
    for group, offset in (([path for path in files if path not in banded], 0), (banded, BANDED_ORDER_OFFSET)):
        if group:
            scan = scan_files(group, "documents").with_row_index("order")
            columns = ["input_id", "text_hash", "minhash"] + (["lsh_bands"] if offset else [])
            parts.append(scan.select(*columns, (pl.col("order").cast(pl.Int64) + offset).alias("order")))
    return parts


def recorded_files(data_dir: str | Path) -> pl.DataFrame:
    """(path, uri, etag, modified_at, size_bytes, inputs, fetched_at) of each version of a seed file already
    recorded: size_bytes is the file's size for a whole file and null for a JSON container (whose rows have their
    records' sizes); fetched_at is when it was last read."""
    frames = [read_table(data_dir, table, ["path", "uri", "record", "size_bytes", "modified_at", "etag", "fetched_at"])
              for table in ("documents", "duplicates", "rejects")]
    rows = pl.concat(frames).filter(pl.col("modified_at").is_not_null() | pl.col("etag").is_not_null())
    return (rows.with_columns(pl.when(pl.col("record").is_null()).then("size_bytes").alias("size_bytes"))
            .group_by("path", "uri", "etag", "modified_at", "size_bytes")
            .agg(pl.len().alias("inputs"), pl.col("fetched_at").max()))


def recorded_inputs(data_dir: str | Path) -> pl.Series:
    """input_ids already accounted for in documents, duplicates or rejects (a column, not a million Python
    strings in a set)."""
    ids = [read_table(data_dir, table, ["input_id"])["input_id"] for table in ("documents", "duplicates", "rejects")]
    return pl.concat(ids).unique()


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

    Frames carry a `run_date` column; a table without rows gets one empty file. New files are written as
    temporaries first; then a manifest naming the renames and deletions is written atomically, and carried out.
    A crash before the manifest leaves the old files (the temporaries are swept); a crash after it is finished
    by the next run (`finish_replacement`).
    """
    renames, old = [], []
    latest = max((frame["run_date"].max() for frame in tables.values() if frame.height), default=date.today())
    for table, frame in tables.items():
        old += [str(path) for path in table_files(data_dir, table)]
        # a table without rows keeps one empty file with its schema, so that every reader's glob finds a file
        partitions = frame.group_by("run_date", maintain_order=True) if frame.height else [((latest,), frame)]
        for (run_date,), rows in partitions:
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


class StagedRun:
    """A run's rows, written batch by batch as hidden temporaries that no reader sees, published by `commit`."""

    def __init__(self, data_dir: str | Path, run_id: str, run_date: date):
        self.data_dir, self.run_id, self.run_date = Path(data_dir), run_id, run_date
        self.staged: dict[str, list[tuple[Path, Path]]] = {table: [] for table in SCHEMAS if table != "runs"}
        self.spill_folder = self.data_dir / SPILL_FOLDER / run_id
        self._sequence = 0

    def write(self, table: str, frame: pl.DataFrame) -> Path:
        """Stage one batch of a table's rows; returns the temporary file (readable, e.g. as dedup history)."""
        self._sequence += 1
        folder = self.data_dir / table / f"run_date={self.run_date.isoformat()}"
        temporary, final = _write_temporary(folder, f"{PART_PREFIX}{self.run_id}-{self._sequence:05d}.parquet",
                                            table, frame.with_columns(pl.lit(self.run_id).alias("run_id")))
        self.staged[table].append((temporary, final))
        return temporary

    def staged_files(self, table: str) -> list[Path]:
        return [temporary for temporary, _ in self.staged[table]]

    def spill(self, frame: pl.DataFrame) -> Path:
        """Keep an intermediate batch on disk instead of in memory until the run reads it back."""
        self.spill_folder.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        path = self.spill_folder / f"batch-{self._sequence:05d}.parquet"
        frame.write_parquet(path, compression="lz4")
        return path

    def commit(self, runs_row: pl.DataFrame) -> list[Path]:
        """Publish every staged file (a table with none gets an empty one), then the runs row: the commit."""
        written = []
        for table, files in self.staged.items():
            if not files:
                self.write(table, pl.from_arrow(SCHEMAS[table].empty_table()))
            for temporary, final in self.staged[table]:
                os.replace(temporary, final)
                written.append(final)
        written.append(write_part(self.data_dir, "runs", runs_row.with_columns(pl.lit(self.run_id).alias("run_id")),
                                  self.run_id, self.run_date))
        self.discard()
        return written

    def discard(self) -> None:
        """Remove what is staged and spilled (after a commit, only the spill is left)."""
        for files in self.staged.values():
            for temporary, _ in files:
                temporary.unlink(missing_ok=True)
        shutil.rmtree(self.spill_folder, ignore_errors=True)
        try:
            self.spill_folder.parent.rmdir()  # the spill root too, once empty: the next run would report it as left
        except OSError:  # another run's spill is in it, or it is gone
            pass
