"""Scale-out: the same flow on a Dask cluster (a distributed LocalCluster) writes what the local run writes."""

import sys

import polars as pl
import pytest

from flows.digest import digest

pytestmark = pytest.mark.usefixtures("prefect_server")

# Columns that say when or in which run a row was made: everything else must match.
RUN_COLUMNS = {"run_id", "fetched_at", "run_date"}


def table(data, name: str, key: str) -> pl.DataFrame:
    frame = pl.read_parquet(f"{data}/{name}/*/*.parquet")
    return frame.select(sorted(set(frame.columns) - RUN_COLUMNS)).sort(key, "path" if "path" in frame.columns else key)


def test_dask_cluster_run_matches_the_local_run(corpus, tmp_path):
    from distributed import Client, LocalCluster

    local, remote = tmp_path / "local", tmp_path / "dask"
    digest(source=str(corpus), data_dir=str(local), batch_size=3)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        report = digest(source=str(corpus), data_dir=str(remote), batch_size=3,
                        dask_address=cluster.scheduler_address)
        finished = {name: prefix.state_counts["memory"] for name, prefix in cluster.scheduler.task_prefixes.items()}
        with Client(cluster) as client:
            prefect_on_workers = client.run(lambda: any(name.startswith("prefect") for name in sys.modules))
    # every stage's batches ran on the cluster's workers: 11 files in batches of 3
    assert finished.get("read_files", 0) >= 4 and finished.get("clean_batch", 0) >= 1, finished
    assert finished.get("summarize_batch", 0) >= 1, finished
    assert (report.documents, report.duplicates, report.rejects) == (6, 2, 5)
    assert set(prefect_on_workers.values()) == {False}  # the workers never import Prefect: no server of theirs
    for name, key in (("documents", "input_id"), ("duplicates", "input_id"), ("rejects", "input_id"),
                      ("summaries", "doc_id")):
        assert table(local, name, key).equals(table(remote, name, key)), name
