"""A run's steps, free of Prefect: the source streams through read -> clean -> deduplicate -> summarise in batches.

Two passes over the new inputs, so memory stays bounded whatever the corpus size: the first reads and
normalises them, spilling each batch and the lines boilerplate learning counts to disk; the second cleans,
deduplicates (against the store and the batches before it), summarises, and stages each batch's rows as hidden
Parquet files, which are published together at the end with the run's row in `runs` (the commit). Each batch's
pure function runs on the run's pool of worker processes (flows/compute.py) or Dask cluster, handed there by a
`Steps` executor: as a Prefect task run of the flow (flows/digest.py), or by a thread of this process
(`ThreadSteps`), which is how `seed-digest run` runs when no Prefect API is configured.
"""

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import polars as pl

from flows.compute import PoolClosed, call, run_batch, workers as worker_pool
from flows.plan import Plan
from flows.progress import BatchProgress
from flows.stopping import deferred_stops, result_when_done
from tasks.batches import Batch, Frames, clean_batch, files_frame, read_files, summarize_batch
from tasks.clean import ARTICLE_LINES_SCHEMA, NORMALIZED_SCHEMA, CleanOptions, learn_boilerplate
from tasks.dedup import RunDocuments, deduplicate, with_band_keys
from tasks.fetch import FetchOptions
from tasks.ingest import TransientSourceError
from tasks.schema import STAGES
from tasks.sources import list_source, new_files
from tasks.store import StagedRun, documents_history, exclusive, new_run_id, recorded_files, recorded_inputs, \
    remove_uncommitted
from tasks.summary_options import SummaryOptions

SAMPLE_SUMMARIES = 3
READ_RETRY_DELAYS = (2.0, 4.0, 8.0)  # seconds before each new try of a read batch that met a transient source error


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


class Carried:
    """A batch (or other bulky value) as a task's parameter, emptied by the flow once the batch is done.

    Prefect's finished task runs hold their parameters and results in reference cycles until the garbage
    collector's next full pass, which in a long flow comes rarely: without this, memory would grow with the
    corpus. Prefect does not walk into it either (it walks lists, dicts and dataclasses given to a task)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def read_step(files: Carried, fetch: FetchOptions, credentials: Carried) -> Frames:
    """A batch of files read and normalised; a transient source error is raised, for the batch to be tried again."""
    return run_batch(Batch("ingest", read_files, files.value, (fetch, credentials.value)))


def clean_step(normalized: Carried, boilerplate: Carried, options: CleanOptions, language: str | None) -> Frames:
    return run_batch(Batch("clean", clean_batch, normalized.value, (boilerplate.value, options, language)))


def summarize_step(documents: Carried, options: SummaryOptions) -> Frames:
    return run_batch(Batch("summarize", summarize_batch, documents.value, (options,)))


class Steps(Protocol):
    """Hands a batch step (read_step, clean_step or summarize_step above) and its arguments to the run, as a
    future of its frames."""

    def submit(self, step, *arguments): ...


class ThreadSteps:
    """Each batch step in a thread of this process, which waits for the worker pool (or Dask cluster) that runs
    its pure function; a read batch that meets a transient source error is tried again after each of
    READ_RETRY_DELAYS, as the flow's Prefect task is, and each new try is logged."""

    def __init__(self, logger, threads: int = 16):
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="batch")
        self._closed = threading.Event()
        self._logger = logger

    def submit(self, step, *arguments):
        return self._threads.submit(self._retried if step is read_step else step, *arguments)

    def _retried(self, *arguments) -> Frames:
        for delay in READ_RETRY_DELAYS:
            try:
                return read_step(*arguments)
            except TransientSourceError as error:
                self._logger.warning("a read batch failed (%s); it is tried again in %g s", error, delay)
                if self._closed.wait(delay):
                    raise PoolClosed() from None
        return read_step(*arguments)

    def close(self) -> None:
        """After the run's pool has closed: the batches not begun are dropped, those in hand end."""
        self._closed.set()
        self._threads.shutdown(wait=True, cancel_futures=True)


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


class DigestRun:
    """One run's two passes under data/'s lock; fills in `report`."""

    def __init__(self, run: Plan, started: datetime, report: RunReport, progress, steps: Steps, logger,
                 credentials: dict | None = None, flow_run_id: str | None = None):
        self.run, self.started, self.report, self.progress = run, started, report, progress
        self.steps, self.logger, self.flow_run_id = steps, logger, flow_run_id
        self.credentials = Carried(credentials)  # a dict Prefect would otherwise walk and could show
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
            return self.steps.submit(read_step, files, self.run.fetch, self.credentials)

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
            return self.steps.submit(clean_step, normalized, learned, run.clean, run.language)

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
            return self.steps.submit(summarize_step, documents, run.summary)

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
            written = self.staged.commit(runs_row(report, self.started, self.run, self.flow_run_id))
        report.written = [str(path) for path in written]
        self.logger.info("run %s: %d inputs -> %d documents, %d duplicates, %d rejects; %d summaries",
                         report.run_id, report.inputs, report.documents, report.duplicates, report.rejects,
                         report.summaries)


def runs_row(report: RunReport, started: datetime, run: Plan, flow_run_id: str | None) -> pl.DataFrame:
    """The runs-table row of a report; stage timings end before the write, which the row itself is part of."""
    return pl.DataFrame([{
        "flow_run_id": flow_run_id,
        "started_at": started, "finished_at": datetime.now(timezone.utc), "source": run.recorded_source,
        "parameters": run.parameters(),
        "files": report.files, "already_recorded": report.already_recorded, "fetched": report.fetched,
        "fetched_bytes": report.fetched_bytes, "skipped": report.skipped, "inputs": report.inputs,
        "documents": report.documents, "duplicates": report.duplicates, "rejects": report.rejects,
        "summaries": report.summaries, "stage_seconds": {stage: report.stage_seconds.get(stage) for stage in STAGES},
    }])


def run_steps(run: Plan, steps: Steps, logger, lock_timeout: float, dask_address: str | None, workers: int | None,
              show_progress: bool, credentials: dict | None = None,
              flow_run_id: str | None = None) -> tuple[RunReport, pl.DataFrame]:
    """A run under data/'s lock, with stop requests taken between batches; its report, and a few of its summaries
    (title, path, summary) for a report to show."""
    started = datetime.now(timezone.utc)
    report = RunReport(run_id=new_run_id(started))
    with deferred_stops(), exclusive(run.data_dir, lock_timeout), BatchProgress(enabled=show_progress) as progress:
        samples = DigestRun(run, started, report, progress, steps, logger, credentials, flow_run_id).execute(
            dask_address, workers)
    return report, samples


def digest_in_threads(run: Plan, logger, lock_timeout: float, dask_address: str | None, workers: int | None,
                      show_progress: bool) -> RunReport:
    """The run without Prefect: its batch steps handed to the pool by threads of this process."""
    steps = ThreadSteps(logger)
    try:
        return run_steps(run, steps, logger, lock_timeout, dask_address, workers, show_progress)[0]
    finally:
        steps.close()
