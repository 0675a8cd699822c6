"""The evaluation flow: ROUGE of every summarizer on a reference corpus, stored as Parquet and Markdown, each batch
a Prefect task and the report an artifact (the steps are flows/evaluation.py's, which the command line runs without
Prefect when no API is set)."""

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import unmapped

from flows.compute import call, workers
from flows.evaluation import DEFAULT_BATCH_SIZE, corpus_batches, evaluation_options, pool_size, store_evaluation
from flows.stopping import deferred_stops, result_when_done
from tasks.batches import score_corpus_batch
from tasks.evaluate import EvaluationOptions, load_corpus


@task(name="score-batch", cache_policy=NO_CACHE)
def score_batch(corpus: pl.DataFrame, options: EvaluationOptions) -> pl.DataFrame:
    return call(score_corpus_batch, corpus, options)


@flow(name="seed-digest-evaluate", task_runner=ThreadPoolTaskRunner(max_workers=16), validate_parameters=True)
def evaluate(corpus: str, data_dir: str = "data", algorithms: list[str] | None = None, language: str | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, resamples: int = 1000) -> str:
    """Score `algorithms` (default: all) and Lead-3 on `corpus`; returns the Markdown report it also stores.

    Writes data_dir/evaluations (means and intervals per algorithm), data_dir/evaluation_scores (per document)
    and data_dir/reports/evaluation-<id>.md, and publishes the report as a Prefect artifact.
    """
    options = evaluation_options(algorithms, language, resamples)
    documents = load_corpus(corpus)
    started = datetime.now(timezone.utc)
    with deferred_stops(), workers(count=pool_size(documents.height, batch_size)):
        futures = score_batch.map(corpus_batches(documents, batch_size), unmapped(options))
        scores = pl.concat([result_when_done(future) for future in futures])
    report = store_evaluation(corpus, data_dir, scores, options, started)
    create_markdown_artifact(report, key="seed-digest-evaluation", description=f"ROUGE on {Path(corpus).name}")
    return report
