"""An evaluation's steps, free of Prefect: the corpus in batches, their scores on the worker pool (or Dask cluster)
a run uses, and the stored tables and report.

`seed-digest evaluate` runs them as they are when no Prefect API is set: a temporary server's boot (6 to 9 s on
2 cores) would be most of a small evaluation's time, for a flow run that no one could look at once the command
ends. The flow in flows/evaluate.py runs the same steps with each batch a Prefect task, on a server that keeps them.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from flows.compute import call, workers
from tasks.batches import score_corpus_batch
from tasks.evaluate import EvaluationOptions, markdown_report, summarize_scores
from tasks.summary_options import ALGORITHM_NAMES

DEFAULT_BATCH_SIZE = 10


def pool_size(documents: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Workers for a corpus: one per batch, up to the cores (a small corpus does not start idle workers)."""
    return min(os.cpu_count() or 1, -(-documents // batch_size))


def evaluation_options(algorithms: list[str] | None, language: str | None, resamples: int) -> EvaluationOptions:
    """The options of an evaluation of `algorithms` (None: all), checked."""
    return EvaluationOptions(algorithms=tuple(algorithms or ALGORITHM_NAMES), language=language, resamples=resamples)


def corpus_batches(documents: pl.DataFrame, batch_size: int) -> list[pl.DataFrame]:
    return [documents.slice(offset, batch_size) for offset in range(0, documents.height, batch_size)]


def store_evaluation(corpus: str, data_dir: str, scores: pl.DataFrame, options: EvaluationOptions,
                     started: datetime) -> str:
    """Write the scores, the table of means and the Markdown report under data_dir; returns the report."""
    from tasks.store import new_run_id, write_part  # pyarrow, imported while the workers score, not before they start

    evaluation_id = new_run_id(started)
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
    return report


def evaluate_on_workers(corpus: str, documents: pl.DataFrame, data_dir: str, options: EvaluationOptions,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> str:
    """The evaluation without Prefect of `documents`, the corpus file's records (`load_corpus`): the batches go to
    the pool two a worker at a time, so that a worker that finishes one has the next at hand."""
    started = datetime.now(timezone.utc)
    batches = corpus_batches(documents, batch_size)
    count = pool_size(documents.height, batch_size)
    with workers(count=count), ThreadPoolExecutor(max_workers=2 * count) as feeders:
        scores = pl.concat(feeders.map(lambda batch: call(score_corpus_batch, batch, options), batches))
    return store_evaluation(corpus, data_dir, scores, options, started)
