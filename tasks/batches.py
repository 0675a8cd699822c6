"""The batch functions a run hands to its worker processes: pure, picklable, and free of Prefect.

Each takes one batch and returns named frames, always with `rejects` among them, so a batch that fails can be
run again input by input (`Batch.split`) and each input's failure turned into a reject row of its own.

The flow's process imports this module to hand its functions to the workers, and must not load the stage
libraries that only the workers use (ftfy, trafilatura, sumy and NLTK: 100 MiB and two seconds of start-up):
the functions import the modules that need them when they first run.
"""

import os
import time
from dataclasses import dataclass

import polars as pl

from tasks.clean import CleanOptions, article_lines, clean_documents
from tasks.fetch import FetchOptions, fetch_all
from tasks.ingest import REJECTS_SCHEMA, InputError, SeedFile, file_reject, read_inputs, reject_row
from tasks.summary_options import SummaryOptions

Frames = dict[str, pl.DataFrame]


def warm_up() -> None:
    """Import every stage's libraries, so that a worker started early has them before its first batch."""
    import tasks.normalize  # noqa: F401
    import tasks.summarize  # noqa: F401


def timed(frames: Frames, began: float) -> Frames:
    """The frames and the function's own seconds, which the run reports per stage."""
    return {**frames, "seconds": pl.DataFrame({"seconds": [time.perf_counter() - began]})}


SEED_FILE_SCHEMA = {"path": pl.Binary, "relative": pl.String, "source": pl.String, "uri": pl.String,
                    "etag": pl.String, "modified_at": pl.Datetime("us", "UTC"), "size_bytes": pl.Int64,
                    "recorded": pl.Int64}


def files_frame(files: list[SeedFile]) -> pl.DataFrame:
    """Seed files as a frame: how a batch of them travels (Prefect walks a list of objects given to a task, and
    keeps what it found for the whole flow run; a frame it leaves alone). A remote file's URL, which may hold a
    presigned signature, travels only here: its redacted `uri` is what is recorded."""
    return pl.DataFrame({"path": [os.fsencode(seed.path) for seed in files],  # bytes: a name need not be UTF-8
                         **{name: [getattr(seed, name) for seed in files] for name in list(SEED_FILE_SCHEMA)[1:]}},
                        schema=SEED_FILE_SCHEMA)


def seed_files(files: pl.DataFrame) -> list[SeedFile]:
    return [SeedFile(os.fsdecode(row["path"]), **{name: row[name] for name in list(SEED_FILE_SCHEMA)[1:]})
            for row in files.iter_rows(named=True)]


def read_files(files: pl.DataFrame, fetch: FetchOptions | None = None, storage_options: dict | None = None) -> Frames:
    """Ingest and normalise seed files (a `files_frame`), fetching the remote ones: `normalized` inputs, `rejects`,
    the `article_lines` that boilerplate learning needs, and the `fetches` counts (`tasks.ingest.read_inputs`)."""
    from tasks.normalize import normalize_inputs

    began = time.perf_counter()
    seeds = seed_files(files)
    remote = [seed for seed in seeds if seed.remote]
    fetched = fetch_all(remote, fetch or FetchOptions(), storage_options) if remote else iter(())
    inputs, rejects, counts = read_inputs(seeds, fetched)
    normalized = normalize_inputs(inputs)
    return timed({"normalized": normalized, "rejects": rejects, "article_lines": article_lines(normalized),
                  "fetches": pl.DataFrame([counts])}, began)


def clean_batch(normalized: pl.DataFrame, boilerplate: dict[str, set[str]], options: CleanOptions,
                language: str | None) -> Frames:
    began = time.perf_counter()
    documents, rejects = clean_documents(normalized, boilerplate, options, language)
    return timed({"documents": documents, "rejects": rejects}, began)


def summarize_batch(documents: pl.DataFrame, options: SummaryOptions) -> Frames:
    from tasks.summarize import summarize_documents

    began = time.perf_counter()
    return timed({"summaries": summarize_documents(documents, options), "rejects": pl.DataFrame(
        schema=REJECTS_SCHEMA)}, began)


def score_corpus_batch(corpus: pl.DataFrame, options) -> pl.DataFrame:
    """ROUGE scores of a batch of an evaluation corpus (`tasks.evaluate.load_corpus` rows, `EvaluationOptions`)."""
    from tasks.rouge import score_documents

    return score_documents(corpus, options)


@dataclass(frozen=True)
class Batch:
    """One batch of a stage: the function, its items (a frame of seed files or of inputs), its other arguments."""

    stage: str
    function: object
    items: pl.DataFrame
    arguments: tuple = ()

    def call(self) -> tuple:
        return (self.function, self.items, *self.arguments)

    def split(self) -> list["Batch"]:
        """One batch per input."""
        return [Batch(self.stage, self.function, self.items.slice(i, 1), self.arguments)
                for i in range(self.items.height)]

    def reject(self, reason: str, detail: str) -> Frames:
        """The frames of a one-input batch that failed: only its reject row."""
        error = InputError(reason, detail)
        row = self.items.row(0, named=True)
        if self.function is read_files:
            rejects = [file_reject(seed_files(self.items)[0], error)]
        else:
            text = row.get("text") or "\n".join(row.get("lines") or []) or None
            rejects = [reject_row(row, self.stage, error, text)]
        return {"rejects": pl.DataFrame(rejects, schema=REJECTS_SCHEMA)}


def combine(results: list[Frames]) -> Frames:
    """The frames of several batches of one stage, concatenated by name."""
    names = dict.fromkeys(name for frames in results for name in frames)
    return {name: pl.concat([frames[name] for frames in results if name in frames])
            for name in names}
