"""The seed-digest flow: the source streams through read -> clean -> deduplicate -> summarise in batches.

Two passes over the new inputs, so memory stays bounded whatever the corpus size: the first reads and
normalises them, spilling each batch and the lines boilerplate learning counts to disk; the second cleans,
deduplicates (against the store and the batches before it), summarises, and stages each batch's rows as hidden
Parquet files, which are published together at the end with the run's row in `runs` (the commit). Each batch
of each stage is one Prefect task, run in this process, whose pure function runs on the run's pool of worker
processes (flows/compute.py) or Dask cluster.
"""

import json
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl
from prefect import flow, get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from flows.compute import call, run_batch, workers as worker_pool
from flows.plan import Plan, plan
from flows.progress import BatchProgress
from flows.report import publish
from flows.server import ApiWatch
from flows.stopping import deferred_stops, result_when_done
from tasks.batches import Batch, clean_batch, files_frame, read_files, summarize_batch
from tasks.clean import ARTICLE_LINES_SCHEMA, NORMALIZED_SCHEMA, CleanOptions, learn_boilerplate
from tasks.dedup import RunDocuments, deduplicate, with_band_keys
from tasks.fetch import FetchOptions
from tasks.ingest import TransientSourceError
from tasks.schema import STAGES
from tasks.sources import list_source, new_files
from tasks.store import StagedRun, documents_history, exclusive, new_run_id, recorded_files, recorded_inputs, \
    remove_uncommitted
from tasks.summary_options import DEFAULT_ALGORITHM, SummaryOptions

DEFAULT_BATCH_SIZE = 1000
INGEST_RETRIES = 3
SAMPLE_SUMMARIES = 3


@dataclass
class RunReport:
    """What a run did: the same counts as its row in the runs table (none is written when nothing was new)."""

    run_id: str | None
    files: int = 0  # listed
    fetched: int = 0
    fetched_bytes: int = 0
    skipped: int = 0  # listed, unchanged since recorded: not fetched
    already_recorded: int = 0
    inputs: int = 0
    documents: int = 0
    duplicates: int = 0
    rejects: int = 0
    summaries: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = round(self.stage_seconds.get(stage, 0.0) + seconds, 3)

    @contextmanager
    def timed(self, stage: str):
        began = time.perf_counter()
        yield
        self.add_seconds(stage, time.perf_counter() - began)


def seconds(frames) -> float:
    """The stage function's own seconds of a batch (none when it was run input by input after a failure)."""
    return frames["seconds"]["seconds"].sum() if "seconds" in frames else 0.0


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry a read batch only for transient source errors."""
    return isinstance(state.result(raise_on_failure=False), TransientSourceError)


class Carried:
    """A batch (or other bulky value) as a task's parameter, emptied by the flow once the batch is done.

    Prefect's finished task runs hold their parameters and results in reference cycles until the garbage
    collector's next full pass, which in a long flow comes rarely: without this, memory would grow with the
    corpus. Prefect does not walk into it either (it walks lists, dicts and dataclasses given to a task)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


@task(name="read-batch", cache_policy=NO_CACHE, retries=INGEST_RETRIES,
      retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_condition_fn=retry_transient)
def read_task(files: Carried, fetch: FetchOptions = FetchOptions(), credentials: Carried = Carried(None)):
    return run_batch(Batch("ingest", read_files, files.value, (fetch, credentials.value)))


@task(name="clean-batch", cache_policy=NO_CACHE)
def clean_task(normalized: Carried, boilerplate: Carried, options: CleanOptions, language: str | None):
    return run_batch(Batch("clean", clean_batch, normalized.value, (boilerplate.value, options, language)))


@task(name="summarize-batch", cache_policy=NO_CACHE)
def summarize_task(documents: Carried, options: SummaryOptions):
    return run_batch(Batch("summarize", summarize_batch, documents.value, (options,)))


def in_order(submit, frames, window: int, progress=None, stage: str | None = None):
    """Results of `submit(Carried(frame))` futures in the order of `frames`, with at most `window` in flight;
    each result's frames are released once the caller has taken the next one."""
    pending = deque()

    def finished():
        future, carried = pending.popleft()
        result = result_when_done(future)
        carried.value = None
        if progress:
            progress.advance(stage)
        return result

    for frame in frames:
        carried = Carried(frame)
        pending.append((submit(carried), carried))
        while len(pending) > window:
            result = finished()
            yield result
            result.clear()
    while pending:
        result = finished()
        yield result
        result.clear()


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
    started = datetime.now(timezone.utc)
    report = RunReport(run_id=new_run_id(started))
    with deferred_stops(), ApiWatch.flow_body(), exclusive(data_dir, lock_timeout), \
            BatchProgress(enabled=show_progress) as progress:
        samples = DigestRun(run_plan, started, report, progress, stored_credentials(credentials_block)).execute(
            dask_address, workers)
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


class DigestRun:
    """One run's two passes under data/'s lock; fills in `report`."""

    def __init__(self, run: Plan, started: datetime, report: RunReport, progress, credentials: dict | None = None):
        self.run, self.started, self.report, self.progress = run, started, report, progress
        self.credentials = Carried(credentials)  # a dict Prefect would otherwise walk and could show
        self.logger = get_run_logger()
        self.staged = StagedRun(run.data_dir, report.run_id, started.date())
        self.samples = pl.DataFrame(schema={"title": pl.String, "path": pl.String, "summary": pl.String})
        self.window = 1  # batches in flight beyond those running: set from the pool's size

    def execute(self, dask_address: str | None, workers: int | None) -> pl.DataFrame:
        for path in remove_uncommitted(self.run.data_dir):
            self.logger.warning("removed %s, left by a run that did not finish", path)
        recorded = recorded_files(self.run.data_dir)
        files = list_source(self.run.source, recorded, self.run.fetch, self.credentials.value)
        self.report.files = len(files)
        files, self.report.skipped, self.report.already_recorded = new_files(files, recorded)
        del recorded
        if not files:
            return self._nothing_new()
        size = self.run.batch_size  # as frames, not 100,000s of objects kept for the whole run
        file_batches = [files_frame(files[i:i + size]) for i in range(0, len(files), size)]
        del files
        try:
            with worker_pool(dask_address, workers) as pool:
                self.window = getattr(pool, "workers", 2) + 1  # one batch queued while the workers run theirs
                spilled, article_lines = self.read(file_batches)
                if self.report.inputs == 0:
                    return self._nothing_new()
                self.digest(spilled, learn_boilerplate(article_lines, self.run.clean))
            self.commit()
        finally:
            self.staged.discard()
        return self.samples

    def _nothing_new(self) -> pl.DataFrame:
        self.logger.info("nothing new under %s: %d file(s), %d input(s) already recorded in %s",
                         self.run.recorded_source, self.report.files, self.report.already_recorded, self.run.data_dir)
        self.report.run_id = None
        return self.samples

    def read(self, file_batches: list[pl.DataFrame]) -> tuple[list, pl.LazyFrame]:
        """Pass 1: read and normalise the files; new inputs and their article lines are spilled, ingest rejects
        staged."""
        known = recorded_inputs(self.run.data_dir)
        self.progress.stage("read", len(file_batches))
        spilled, lines = [], []

        def read(files: Carried):
            return read_task.submit(files, self.run.fetch, self.credentials)

        for frames in in_order(read, file_batches, self.window, self.progress, "read"):
            self.report.add_seconds("ingest", seconds(frames))
            self._count_fetches(frames.get("fetches"))
            is_new = ~pl.col("input_id").is_in(known.implode())
            normalized = frames.get("normalized", pl.DataFrame(schema=NORMALIZED_SCHEMA))
            found = normalized.height + frames["rejects"].height
            normalized, rejects = normalized.filter(is_new), frames["rejects"].filter(is_new)
            self._reject(rejects)
            if normalized.height:
                spilled.append(self.staged.spill(normalized))
                lines.append(self.staged.spill(frames["article_lines"].filter(
                    pl.col("input_id").is_in(normalized["input_id"].implode()))))
            self.report.inputs += normalized.height + rejects.height
            self.report.already_recorded += found - normalized.height - rejects.height
        return spilled, (pl.scan_parquet(lines, schema=ARTICLE_LINES_SCHEMA) if lines
                         else pl.LazyFrame(schema=ARTICLE_LINES_SCHEMA))

    def _count_fetches(self, fetches: pl.DataFrame | None) -> None:
        """A read batch's fetched and skipped files (an input failed alone has none: it was not fetched)."""
        if fetches is not None and fetches.height:
            totals = fetches.sum().row(0, named=True)
            self.report.fetched += totals["fetched"]
            self.report.fetched_bytes += totals["fetched_bytes"]
            self.report.skipped += totals["skipped"]
            self.report.already_recorded += totals["skipped_inputs"]

    def digest(self, spilled: list, boilerplate: dict[str, set[str]]) -> None:
        """Pass 2: clean, deduplicate and summarise each spilled batch, staging its rows."""
        run = self.run
        self.progress.stage("clean", len(spilled))
        self.progress.stage("summarize", len(spilled))

        learned = Carried(boilerplate)  # a dict of sets, which Prefect would walk for every batch

        def clean(normalized: Carried):
            return clean_task.submit(normalized, learned, run.clean, run.language)

        stored = documents_history(run.data_dir)
        kept = RunDocuments(run.dedup.banding, self.staged.spill_folder)

        def deduplicated():
            for frames in in_order(clean, map(pl.read_parquet, spilled), self.window, self.progress, "clean"):
                self.report.add_seconds("clean", seconds(frames))
                self._reject(frames["rejects"])
                documents = frames.get("documents")
                if documents is None or documents.height == 0:
                    continue
                with self.report.timed("deduplicate"):
                    canonical, duplicates = deduplicate(documents, stored, run.dedup, kept)
                    canonical = with_band_keys(canonical)
                    kept.add(canonical)
                    if duplicates.height:
                        self.staged.write("duplicates", duplicates)
                        self.report.duplicates += duplicates.height
                    if canonical.height:
                        self.staged.write("documents", canonical)
                        self.report.documents += canonical.height
                        yield canonical

        def summarize(documents: Carried):
            return summarize_task.submit(documents, run.summary)

        columns = ("input_id", "title", "text", "language", "path")
        with kept:
            for frames in in_order(summarize, (canonical.select(columns) for canonical in deduplicated()),
                                   self.window, self.progress, "summarize"):
                self.report.add_seconds("summarize", seconds(frames))
                summaries = self._with_fallback(frames)
                self.staged.write("summaries", summaries)
                self.report.summaries += summaries.height

    def _with_fallback(self, frames) -> pl.DataFrame:
        """Summaries of a batch; a document whose summarizer failed or crashed gets the Lead summary instead."""
        summaries, failed = frames.get("summaries"), frames["rejects"]
        if failed.height == 0:
            return summaries
        documents = self._staged_documents(failed["input_id"])
        for input_id, reason, detail in failed.select("input_id", "reason", "detail").iter_rows():
            self.logger.warning("summarizer %s failed on %s (%s: %s); it gets the lead summary",
                                self.run.summary.algorithm, input_id, reason, detail)
        lead = SummaryOptions("lead", self.run.summary.sentences, self.run.summary.ratio, self.run.summary.words)
        return pl.concat([summary for summary in (summaries, call(summarize_batch, documents, lead)["summaries"])
                          if summary is not None])

    def _staged_documents(self, ids: pl.Series) -> pl.DataFrame:
        files = self.staged.staged_files("documents")
        return pl.scan_parquet(files).filter(pl.col("input_id").is_in(ids.implode())).select(
            "input_id", "title", "text", "language").collect()

    def _reject(self, rejects: pl.DataFrame) -> None:
        if rejects.height:
            self.staged.write("rejects", rejects)
            self.report.rejects += rejects.height
            for reason, count in rejects.group_by("reason").len().iter_rows():
                self.report.reject_reasons[reason] = self.report.reject_reasons.get(reason, 0) + count

    def commit(self) -> None:
        report = self.report
        report.reject_reasons = dict(sorted(report.reject_reasons.items()))
        if report.documents + report.duplicates + report.rejects != report.inputs:
            raise RuntimeError(f"inputs not accounted for: {report.documents} documents + {report.duplicates} "
                               f"duplicates + {report.rejects} rejects != {report.inputs} inputs")
        first = {table: self.staged.staged_files(table)[:1] for table in ("documents", "summaries")}
        if first["documents"] and first["summaries"]:
            self.samples = pl.read_parquet(first["summaries"]).head(SAMPLE_SUMMARIES).join(
                pl.read_parquet(first["documents"]), left_on="doc_id", right_on="input_id").select(self.samples.columns)
        with report.timed("write"):
            written = self.staged.commit(runs_row(report, self.started, self.run))
        report.written = [str(path) for path in written]
        self.logger.info("run %s: %d inputs -> %d documents, %d duplicates, %d rejects; %d summaries",
                         report.run_id, report.inputs, report.documents, report.duplicates, report.rejects,
                         report.summaries)


def runs_row(report: RunReport, started: datetime, run: Plan) -> pl.DataFrame:
    """The runs-table row of a report; stage timings end before the write, which the row itself is part of."""
    return pl.DataFrame([{
        "flow_run_id": str(runtime.flow_run.id) if runtime.flow_run.id else None,
        "started_at": started, "finished_at": datetime.now(timezone.utc), "source": run.recorded_source,
        "parameters": run.parameters(),
        "files": report.files, "already_recorded": report.already_recorded, "fetched": report.fetched,
        "fetched_bytes": report.fetched_bytes, "skipped": report.skipped, "inputs": report.inputs,
        "documents": report.documents, "duplicates": report.duplicates, "rejects": report.rejects,
        "summaries": report.summaries, "stage_seconds": {stage: report.stage_seconds.get(stage) for stage in STAGES},
    }])
