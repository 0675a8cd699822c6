"""The seed-digest flow: a run's steps (flows/digest_steps.py) with each batch of each stage a Prefect task, run in
this process, whose pure function runs on the run's pool of worker processes (flows/compute.py) or Dask cluster;
its report and sample summaries published as artifacts.
"""

import json

from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.api_watch import ApiWatch
from flows.digest_steps import READ_RETRY_DELAYS, RunReport, clean_step, read_step, run_steps, summarize_step
from flows.plan import plan
from flows.report import publish
from tasks.fetch import FetchOptions
from tasks.ingest import TransientSourceError
from tasks.summary_options import DEFAULT_ALGORITHM

DEFAULT_BATCH_SIZE = 1000


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry a read batch only for transient source errors."""
    return isinstance(state.result(raise_on_failure=False), TransientSourceError)


read_task = task(name="read-batch", cache_policy=NO_CACHE, retries=len(READ_RETRY_DELAYS),
                 retry_delay_seconds=list(READ_RETRY_DELAYS), retry_condition_fn=retry_transient)(read_step)
clean_task = task(name="clean-batch", cache_policy=NO_CACHE)(clean_step)
summarize_task = task(name="summarize-batch", cache_policy=NO_CACHE)(summarize_step)


class PrefectTasks:
    """Each batch step a Prefect task run of the flow."""

    tasks = {read_step: read_task, clean_step: clean_task, summarize_step: summarize_task}

    def submit(self, step, *arguments):
        return self.tasks[step].submit(*arguments)


@flow(name="seed-digest", task_runner=ThreadPoolTaskRunner(max_workers=16), validate_parameters=True)
def digest(
    source: str = "seeds",
    data_dir: str = "data",
    algorithm: str = DEFAULT_ALGORITHM,
    sentences: int | None = 3,
    ratio: float | None = None,
    words: int | None = None,
    language: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    min_sentences: int = 2,
    near_duplicate_threshold: float = 0.8,
    lock_timeout: float = 0.0,
    workers: int | None = None,
    dask_address: str | None = None,
    show_progress: bool = False,
    fetch_timeout: float = FetchOptions.timeout,
    credentials_block: str | None = None,
) -> RunReport:
    """Digest every new seed input under `source` into the Parquet tables under `data_dir`.

    `language` forces an ISO 639-1 code instead of detecting it per document; `ratio` (0-1] or `words`
    replaces `sentences` as the summary length. Inputs already recorded in data_dir are skipped, so a re-run on the
    same input writes nothing. `workers` processes (default: all cores) do the batch work, or the Dask cluster
    at `dask_address` (default $SEED_DIGEST_DASK_ADDRESS). `source` may be a URL (tasks/sources.py); a remote
    input's fetch waits `fetch_timeout` seconds for an answer. `credentials_block` names a Prefect Secret block
    holding an object store's fsspec storage options (its credentials); without it, the store's client finds them
    in the environment and its own configuration.
    """
    run_plan = plan(source, data_dir, algorithm, sentences, ratio, words, language, batch_size, min_sentences,
                    near_duplicate_threshold, fetch_timeout)
    with ApiWatch.flow_body():
        report, samples = run_steps(run_plan, PrefectTasks(), get_run_logger(), lock_timeout, dask_address, workers,
                                    show_progress, stored_credentials(credentials_block),
                                    str(runtime.flow_run.id) if runtime.flow_run.id else None)
    publish(report, run_plan.recorded_source, data_dir, samples)
    return report


def stored_credentials(block: str | None) -> dict | None:
    """The storage options kept in the Prefect Secret block named `block`: a JSON object, such as s3fs's `key` and
    `secret`. They travel to the workers with each read batch, never as a parameter Prefect would record."""
    if block is None:
        return None
    from prefect.blocks.system import Secret

    value = Secret.load(block).get()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise ValueError(f"the Secret block {block!r} must hold a JSON object of storage options, such as "
                         '{"key": "...", "secret": "..."} for s3://')
    return value
