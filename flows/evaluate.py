"""The evaluation flow: ROUGE of every summarizer on a reference corpus, stored as Parquet and Markdown."""

import os
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import unmapped

from flows.compute import call, workers
from tasks.batches import score_corpus_batch
from tasks.evaluate import EvaluationOptions, load_corpus, markdown_report, summarize_scores
from tasks.store import new_run_id, write_part
from tasks.summary_options import ALGORITHM_NAMES


DEFAULT_BATCH_SIZE = 10


def pool_size(documents: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Workers for a corpus: one per batch, up to the cores (a small corpus does not start idle workers)."""
    return min(os.cpu_count() or 1, -(-documents // batch_size))


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
    options = EvaluationOptions(algorithms=tuple(algorithms or ALGORITHM_NAMES), language=language,
                                resamples=resamples)
    documents = load_corpus(corpus)
    started = datetime.now(timezone.utc)
    evaluation_id = new_run_id(started)
    chunks = [documents.slice(offset, batch_size) for offset in range(0, documents.height, batch_size)]
    with workers(count=pool_size(documents.height, batch_size)):
        scores = pl.concat([future.result() for future in score_batch.map(chunks, unmapped(options))])
    table = summarize_scores(scores, options)
    name = Path(corpus).name
    identity = [pl.lit(evaluation_id).alias("evaluation_id"), pl.lit(name).alias("corpus")]
    write_part(data_dir, "evaluation_scores", scores.with_columns(identity), evaluation_id, started.date())
    write_part(data_dir, "evaluations", table.with_columns(*identity, pl.lit(started).alias("created_at")),
               evaluation_id, started.date())
    report = markdown_report(name, table)
    path = Path(data_dir, "reports", f"evaluation-{evaluation_id}.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report, encoding="utf-8")
    create_markdown_artifact(report, key="seed-digest-evaluation", description=f"ROUGE on {name}")
    return report
