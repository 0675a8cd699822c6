"""Compact: deduplicate the whole store again and rewrite each table as one file per run-date partition.

Runs check new documents against everything stored, so the weekly pass finds what runs cannot: duplicates
under a changed threshold, and pairs that the LSH candidate search missed. A document found to duplicate an
earlier one (earlier run, then path and record) moves from documents to duplicates, its summary goes, and
duplicates that pointed at it point at its canonical document instead. Nothing is lost: every input stays in
exactly one of documents, duplicates and rejects.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from tasks.clean import CleanOptions, minhash_signature
from tasks.dedup import DedupOptions, deduplicate, no_history, with_band_keys
from tasks.schema import SCHEMAS
from tasks.store import read_table, replace_tables, table_files


@dataclass
class CompactionReport:
    files_before: int = 0
    files_after: int = 0
    documents: int = 0
    duplicates: int = 0
    demoted: int = 0
    repointed: int = 0
    summaries_removed: int = 0


def read_store(data_dir) -> dict[str, pl.DataFrame]:
    """Every table, with its run_date partition as a column."""
    return {table: read_table(data_dir, table, [*SCHEMAS[table].names, "run_date"]) for table in SCHEMAS}


def rededuplicate(tables: dict[str, pl.DataFrame], options: DedupOptions, clean: CleanOptions
                  ) -> tuple[dict[str, pl.DataFrame], CompactionReport]:
    """Tables after deduplicating all documents again, in the order their runs recorded them."""
    report = CompactionReport()
    order = tables["runs"].select("run_id", "started_at")
    documents = (tables["documents"].join(order, on="run_id", how="left")
                 .sort("started_at", "path", "record", nulls_last=False).drop("started_at"))
    canonical, demoted = deduplicate(documents, no_history(), options)
    canonical = with_band_keys(canonical)
    moved_to = dict(demoted.select("input_id", "canonical_id").iter_rows())

    duplicates = tables["duplicates"]
    stale = duplicates.filter(pl.col("canonical_id").is_in(list(moved_to)))
    if stale.height:
        signatures = dict(canonical.select("input_id", "minhash").iter_rows())
        rows = []
        for row in stale.iter_rows(named=True):
            target = moved_to[row["canonical_id"]]
            mine = np.asarray(minhash_signature(row["text"], clean))
            row["similarity"] = float(np.mean(mine == np.asarray(signatures[target])))
            row["canonical_id"] = target
            rows.append(row)
        repointed = pl.DataFrame(rows, schema=duplicates.schema)
        duplicates = pl.concat([duplicates.filter(~pl.col("canonical_id").is_in(list(moved_to))), repointed])
    duplicates = pl.concat([duplicates, demoted.select(duplicates.columns)])

    summaries = tables["summaries"].filter(~pl.col("doc_id").is_in(list(moved_to)))
    report.documents, report.duplicates, report.demoted = canonical.height, duplicates.height, demoted.height
    report.repointed = stale.height
    report.summaries_removed = tables["summaries"].height - summaries.height
    return {**tables, "documents": canonical, "duplicates": duplicates, "summaries": summaries}, report


def compact_store(data_dir, options: DedupOptions, clean: CleanOptions, stamp: str) -> CompactionReport:
    """Re-deduplicate and rewrite the store in place, atomically (see store.replace_tables)."""
    tables = read_store(data_dir)
    before = sum(len(table_files(data_dir, table)) for table in SCHEMAS)
    inputs_before = sum(tables[name].height for name in ("documents", "duplicates", "rejects"))
    tables, report = rededuplicate(tables, options, clean)
    inputs_after = sum(tables[name].height for name in ("documents", "duplicates", "rejects"))
    if inputs_after != inputs_before:
        raise RuntimeError(f"compaction would change the inputs accounted for: {inputs_before} -> {inputs_after}")
    report.files_before = before
    report.files_after = len(replace_tables(data_dir, tables, stamp))
    return report
