"""The batch functions a run hands to its worker processes: pure, picklable, and free of Prefect.

Each takes one batch and returns named frames, always with `rejects` among them, so a batch that fails can be
run again input by input (`Batch.split`) and each input's failure turned into a reject row of its own.
"""

import time
from dataclasses import dataclass

import polars as pl

from tasks.clean import CleanOptions, article_lines, clean_documents, normalize_inputs
from tasks.ingest import REJECTS_SCHEMA, InputError, SeedFile, file_reject, read_inputs, reject_row
from tasks.summarize import SummaryOptions, summarize_documents

Frames = dict[str, pl.DataFrame]


def timed(frames: Frames, began: float) -> Frames:
    """The frames and the function's own seconds, which the run reports per stage."""
    return {**frames, "seconds": pl.DataFrame({"seconds": [time.perf_counter() - began]})}


def read_files(files: list[SeedFile]) -> Frames:
    """Ingest and normalise seed files: `normalized` inputs, `rejects`, and the `article_lines` that
    boilerplate learning needs."""
    began = time.perf_counter()
    inputs, rejects = read_inputs(files)
    normalized = normalize_inputs(inputs)
    return timed({"normalized": normalized, "rejects": rejects, "article_lines": article_lines(normalized)}, began)


def clean_batch(normalized: pl.DataFrame, boilerplate: dict[str, set[str]], options: CleanOptions,
                language: str | None) -> Frames:
    began = time.perf_counter()
    documents, rejects = clean_documents(normalized, boilerplate, options, language)
    return timed({"documents": documents, "rejects": rejects}, began)


def summarize_batch(documents: pl.DataFrame, options: SummaryOptions) -> Frames:
    began = time.perf_counter()
    return timed({"summaries": summarize_documents(documents, options), "rejects": pl.DataFrame(
        schema=REJECTS_SCHEMA)}, began)


@dataclass(frozen=True)
class Batch:
    """One batch of a stage: the function, its items (seed files or a frame of inputs) and its other arguments."""

    stage: str
    function: object
    items: list | pl.DataFrame
    arguments: tuple = ()

    def call(self) -> tuple:
        return (self.function, self.items, *self.arguments)

    def split(self) -> list["Batch"]:
        """One batch per input."""
        if isinstance(self.items, pl.DataFrame):
            return [Batch(self.stage, self.function, self.items.slice(i, 1), self.arguments)
                    for i in range(self.items.height)]
        return [Batch(self.stage, self.function, [item], self.arguments) for item in self.items]

    def reject(self, reason: str, detail: str) -> Frames:
        """The frames of a one-input batch that failed: only its reject row."""
        error = InputError(reason, detail)
        if isinstance(self.items, pl.DataFrame):
            row = self.items.row(0, named=True)
            text = row.get("text") or "\n".join(row.get("lines") or []) or None
            rejects = [reject_row(row, self.stage, error, text)]
        else:
            rejects = [file_reject(self.items[0], error)]
        return {"rejects": pl.DataFrame(rejects, schema=REJECTS_SCHEMA)}


def combine(results: list[Frames]) -> Frames:
    """The frames of several batches of one stage, concatenated by name."""
    names = dict.fromkeys(name for frames in results for name in frames)
    return {name: pl.concat([frames[name] for frames in results if name in frames])
            for name in names}
