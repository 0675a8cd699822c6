"""Scale-out: the same flow on a Dask cluster (a distributed LocalCluster) writes what the local run writes."""

import sys

import pytest

from flows.digest import digest
from tests.conftest import TABLE_KEYS, written_rows

pytestmark = pytest.mark.usefixtures("prefect_server")


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
    for name, key in TABLE_KEYS:
        assert written_rows(local, name, key).equals(written_rows(remote, name, key)), name
