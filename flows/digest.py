"""The seed-digest flow: ingest -> normalise -> clean -> deduplicate -> summarise -> write, one task per batch."""

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import polars as pl
from prefect import flow, get_run_logger, runtime
from prefect.futures import wait
from prefect.task_runners import ProcessPoolTaskRunner
from prefect.utilities.annotations import unmapped

from flows.progress import BatchProgress
from flows.report import publish
from tasks.caching import BatchCache
from tasks.clean import CleanOptions, boilerplate_lines, clean_batch, normalize_batch
from tasks.dedup import DedupOptions, deduplicate_run
from tasks.ingest import discover, ingest_batch
from tasks.schema import STAGES
from tasks.store import (canonical_signatures, exclusive, new_run_id, recorded_inputs, remove_uncommitted,
                         write_run_task)
from tasks.summarize import DEFAULT_ALGORITHM, SummaryOptions, summarize_batch

DEFAULT_BATCH_SIZE = 100
DASK_ADDRESS_SETTING = "SEED_DIGEST_DASK_ADDRESS"


def task_runner(dask_address: str | None = None, workers: int | None = None):
    """A process pool on this machine, or the Dask cluster at `dask_address` (or $SEED_DIGEST_DASK_ADDRESS)."""
    address = dask_address or os.environ.get(DASK_ADDRESS_SETTING)
    if address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=address)
    return ProcessPoolTaskRunner(max_workers=workers)


@dataclass(frozen=True)
class Plan:
    """A run's checked parameters: where from, where to, and each stage's options."""

    source: str
    data_dir: str
    language: str | None
    batch_size: int
    clean: CleanOptions
    dedup: DedupOptions
    summary: SummaryOptions

    def parameters(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class RunReport:
    """What a run did: the same counts as its row in the runs table (none is written when nothing was new)."""

    run_id: str | None
    files: int = 0
    already_recorded: int = 0
    inputs: int = 0
    documents: int = 0
    duplicates: int = 0
    rejects: int = 0
    summaries: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    @contextmanager
    def timed(self, stage: str):
        began = time.perf_counter()
        yield
        self.stage_seconds[stage] = round(time.perf_counter() - began, 3)


def batches(frame: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [frame.slice(offset, size) for offset in range(0, frame.height, size)] or [frame]


def collect(futures, stage: str, progress) -> list:
    """Results of a stage's batch futures, advancing the progress bar as each finishes."""
    progress.stage(stage, len(futures))
    pending = set(futures)
    while pending:
        done, pending = wait(list(pending), timeout=0.5)
        for _ in done:
            progress.advance(stage)
    return [future.result() for future in futures]


def plan(source: str, data_dir: str, algorithm: str, sentences: int | None, ratio: float | None, words: int | None,
         language: str | None, batch_size: int, min_sentences: int, near_duplicate_threshold: float) -> Plan:
    """The run's plan from the flow's parameters; a bad value fails here, before any work."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if min_sentences < 1:
        raise ValueError(f"min_sentences must be at least 1, not {min_sentences}")
    if not 0 < near_duplicate_threshold <= 1:
        raise ValueError(f"near_duplicate_threshold must be in (0, 1], not {near_duplicate_threshold}")
    if (ratio is not None or words is not None) and sentences is not None:
        sentences = None  # a ratio or word count given explicitly overrides the default sentence count
    clean = CleanOptions(min_sentences=min_sentences)
    return Plan(source, data_dir, language, batch_size, clean,
                DedupOptions(threshold=near_duplicate_threshold, num_perm=clean.num_perm),
                SummaryOptions(algorithm=algorithm, sentences=sentences, ratio=ratio, words=words))


@flow(name="seed-digest", task_runner=task_runner(), validate_parameters=True)
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
    show_progress: bool = False,
) -> RunReport:
    """Digest every new seed input under `source` into the Parquet tables under `data_dir`.

    `language` forces an ISO 639-1 code instead of detecting it per document; `ratio` (0-1] or `words`
    replaces `sentences` as the summary length. Inputs already recorded in data_dir are skipped, so a re-run on the
    same input writes nothing.
    """
    run_plan = plan(source, data_dir, algorithm, sentences, ratio, words, language, batch_size, min_sentences,
                    near_duplicate_threshold)
    started = datetime.now(timezone.utc)
    report = RunReport(run_id=new_run_id(started))
    with exclusive(data_dir, lock_timeout), BatchProgress(enabled=show_progress) as progress:
        samples = run_stages(run_plan, started, report, progress)
    publish(report, source, data_dir, samples)
    return report


def run_stages(run: Plan, started: datetime, report: RunReport, progress) -> pl.DataFrame:
    """The stages, under data/'s lock; fills in `report` and returns title, path and summary of the documents."""
    logger = get_run_logger()
    no_samples = pl.DataFrame(schema={"title": pl.String, "path": pl.String, "summary": pl.String})
    for path in remove_uncommitted(run.data_dir):
        logger.warning("removed %s, left by a run that did not finish", path)
    cached = BatchCache(run.data_dir)
    with report.timed("ingest"):
        files = discover(run.source)
        known = recorded_inputs(run.data_dir)
        file_batches = [files[i:i + run.batch_size] for i in range(0, len(files), run.batch_size)]
        ingested = collect(cached(ingest_batch).map(file_batches), "ingest", progress) if files else []
        inputs = pl.concat([batch[0] for batch in ingested]) if ingested else None
        ingest_rejects = pl.concat([batch[1] for batch in ingested]) if ingested else None
    report.files = len(files)
    if inputs is None or inputs.height + ingest_rejects.height == 0:
        logger.info("no seed files under %s", run.source)
        report.run_id = None
        cached.clear()
        return no_samples
    is_new = ~pl.col("input_id").is_in(list(known))
    report.already_recorded = inputs.height + ingest_rejects.height
    inputs, ingest_rejects = inputs.filter(is_new), ingest_rejects.filter(is_new)
    report.inputs = inputs.height + ingest_rejects.height
    report.already_recorded -= report.inputs
    if report.inputs == 0:
        logger.info("all %d inputs under %s are already recorded in %s: nothing to do",
                    report.already_recorded, run.source, run.data_dir)
        report.run_id = None
        cached.clear()
        return no_samples

    with report.timed("clean"):
        normalized = collect(cached(normalize_batch).map(batches(inputs, run.batch_size)), "normalize", progress)
        boilerplate = boilerplate_lines(pl.concat(normalized), run.clean)
        cleaned = collect(cached(clean_batch).map(normalized, unmapped(boilerplate), unmapped(run.clean),
                                          unmapped(run.language)), "clean", progress)
        documents = pl.concat([batch[0] for batch in cleaned])
        rejects = pl.concat([ingest_rejects] + [batch[1] for batch in cleaned])
    with report.timed("deduplicate"):
        documents, duplicates = deduplicate_run(documents, canonical_signatures(run.data_dir), run.dedup)
    with report.timed("summarize"):
        summaries = pl.concat(collect(cached(summarize_batch).map(batches(documents, run.batch_size),
                                                          unmapped(run.summary)), "summarize", progress))

    report.documents, report.duplicates = documents.height, duplicates.height
    report.rejects, report.summaries = rejects.height, summaries.height
    report.reject_reasons = dict(rejects.group_by("reason").len().sort("reason").iter_rows())
    if report.documents + report.duplicates + report.rejects != report.inputs:
        raise RuntimeError(f"inputs not accounted for: {report.documents} documents + {report.duplicates} "
                           f"duplicates + {report.rejects} rejects != {report.inputs} inputs")
    with report.timed("write"):
        written = write_run_task(run.data_dir, report.run_id, started.date(), {
            "documents": documents, "summaries": summaries, "duplicates": duplicates, "rejects": rejects,
            "runs": runs_row(report, started, run),
        })
    report.written = [str(path) for path in written]
    cached.clear()
    logger.info("run %s: %d inputs -> %d documents, %d duplicates, %d rejects; %d summaries", report.run_id,
                report.inputs, report.documents, report.duplicates, report.rejects, report.summaries)
    return documents.join(summaries, left_on="input_id", right_on="doc_id").select("title", "path", "summary")


def runs_row(report: RunReport, started: datetime, run: Plan) -> pl.DataFrame:
    """The runs-table row of a report; stage timings end before the write, which the row itself is part of."""
    return pl.DataFrame([{
        "flow_run_id": str(runtime.flow_run.id) if runtime.flow_run.id else None,
        "started_at": started, "finished_at": datetime.now(timezone.utc), "source": run.source,
        "parameters": run.parameters(),
        "files": report.files, "already_recorded": report.already_recorded, "inputs": report.inputs,
        "documents": report.documents, "duplicates": report.duplicates, "rejects": report.rejects,
        "summaries": report.summaries, "stage_seconds": {stage: report.stage_seconds.get(stage) for stage in STAGES},
    }])
