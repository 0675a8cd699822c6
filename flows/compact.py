"""The weekly maintenance flow: deduplicate the whole store again and compact it to one file per partition."""

from dataclasses import asdict
from datetime import datetime, timezone

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.api_watch import ApiWatch
from tasks.clean import CleanOptions
from tasks.compact import CompactionReport, compact_store
from tasks.dedup import DedupOptions
from tasks.store import exclusive, new_run_id, remove_uncommitted


@task(name="compact-store", cache_policy=NO_CACHE)
def compact_task(data_dir: str, options: DedupOptions, clean: CleanOptions, stamp: str) -> CompactionReport:
    return compact_store(data_dir, options, clean, stamp)


@flow(name="seed-digest-compact", validate_parameters=True)
def compact(data_dir: str = "data", near_duplicate_threshold: float = 0.8,
            lock_timeout: float = 600.0) -> CompactionReport:
    """Re-deduplicate every stored document and rewrite each table as one file per run_date partition."""
    if not 0 < near_duplicate_threshold <= 1:
        raise ValueError(f"near_duplicate_threshold must be in (0, 1], not {near_duplicate_threshold}")
    clean = CleanOptions()
    options = DedupOptions(threshold=near_duplicate_threshold, num_perm=clean.num_perm)
    with ApiWatch.flow_body(), exclusive(data_dir, lock_timeout):
        for path in remove_uncommitted(data_dir):
            get_run_logger().warning("removed %s, left by a run that did not finish", path)
        report = compact_task(data_dir, options, clean, new_run_id(datetime.now(timezone.utc)))
    create_table_artifact([{"measure": name.replace("_", " "), "count": value} for name, value in
                           asdict(report).items()], key="seed-digest-compaction",
                          description="Files and rows before and after compaction")
    get_run_logger().info("compacted %s: %d files -> %d; %d documents moved to duplicates", data_dir,
                          report.files_before, report.files_after, report.demoted)
    return report
