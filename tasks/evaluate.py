"""Evaluate: ROUGE of each summarizer against reference summaries, beside the Lead-3 baseline.

Each document is cleaned as a digest run cleans it, then summarised by every algorithm at the reference's
length in words (whole sentences in the algorithm's rank order until the summary reaches the reference's word
count: highlights are shorter sentences than an article's, so a count of sentences would be the wrong length);
Lead-3 takes the first three sentences, whatever their length, and so does the default summarizer a second time
(the length a run gives it), so that it is compared with Lead-3 at both lengths.
Scores are rouge-score's ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 with Porter stemming, summary and reference one
sentence per line; corpus means carry a 95 % bootstrap confidence interval over documents. A document may have
several references (human summaries usually come several to a document): each summary is scored against every
one, and a document's score is the mean over its references (its best match, the max, is kept beside it);
the summary's word budget is the references' mean length. Each algorithm's paired difference from Lead-3 on the
same documents comes with its own interval.

This module holds what the flow's process needs (the corpus, the options, the statistics, the report); the
scoring itself, which needs rouge-score, NLTK and sumy, is tasks/rouge.py, run by the workers.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from tasks.summary_options import ALGORITHM_NAMES

# Defined here, not with the Parquet schemas (tasks/schema.py): the workers that score import this module, and
# with the schemas they would load pyarrow, which nothing they do needs (0.2 s of each one's start).
METRICS = ("rouge1", "rouge2", "rougeLsum")

LEAD3 = "lead3"
REFERENCE_LENGTH = "reference words"
LEAD3_SENTENCES = 3
LEAD3_LENGTH = f"{LEAD3_SENTENCES} sentences"
CORPUS_SCHEMA = {"doc_id": pl.String, "title": pl.String, "text": pl.String, "references": pl.List(pl.String)}
SCORES_SCHEMA = {"doc_id": pl.String, "algorithm": pl.String, "length": pl.String, "references": pl.Int32,
                 "summary_sentences": pl.Int32, "reference_sentences": pl.Int32, "summary_words": pl.Int32,
                 "reference_words": pl.Int32, **{metric: pl.Float64 for metric in METRICS},
                 **{f"{metric}_max": pl.Float64 for metric in METRICS}}


@dataclass(frozen=True)
class EvaluationOptions:
    algorithms: tuple[str, ...] = ALGORITHM_NAMES
    language: str | None = None
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self):
        unknown = [name for name in self.algorithms if name not in ALGORITHM_NAMES]
        if unknown or not self.algorithms:
            raise ValueError(f"unknown algorithm(s) {', '.join(unknown) or '(none given)'}; "
                             f"choose from {', '.join(ALGORITHM_NAMES)}")


def load_corpus(path: str | Path) -> pl.DataFrame:
    """The records of a JSON Lines corpus with references, checked; `tasks.rouge.score_documents` cleans them."""
    rows = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text, reference = record["text"], record["reference"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path}, line {number}: a record needs JSON with text and reference ({error})")
            references = [reference] if isinstance(reference, str) else reference
            if not (isinstance(references, list) and references
                    and all(isinstance(one, str) and one.strip() for one in references)):
                raise ValueError(f"{path}, line {number}: reference must be a summary (a string, one sentence a "
                                 "line) or a non-empty list of them")
            rows.append({"doc_id": str(record.get("id", number)), "title": record.get("title"), "text": text,
                         "references": references})
    if not rows:
        raise ValueError(f"{path} holds no records")
    return pl.DataFrame(rows, schema=CORPUS_SCHEMA)


@lru_cache(maxsize=4)
def resampled_indices(size: int, resamples: int, seed: int) -> np.ndarray:
    """The bootstrap's draws of `size` indices, `resamples` times: the same for every mean of an evaluation (a
    new generator with the same seed draws them again), so they are drawn once."""
    indices = np.random.default_rng(seed).integers(0, size, size=(resamples, size))
    indices.flags.writeable = False
    return indices


def bootstrap_interval(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean."""
    means = values[resampled_indices(len(values), resamples, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_differences(scores: pl.DataFrame, algorithm: str, length: str = REFERENCE_LENGTH,
                       baseline: str = LEAD3) -> np.ndarray:
    """`algorithm`'s ROUGE F1 at `length` minus `baseline`'s on each document (in points), one column per metric."""
    pair = scores.filter(pl.col("algorithm") == algorithm, pl.col("length") == length).join(
        scores.filter(pl.col("algorithm") == baseline), on="doc_id", suffix="_baseline", maintain_order="left")
    return pair.select((pl.col(m) - pl.col(f"{m}_baseline")) * 100 for m in METRICS).to_numpy()


def summarize_scores(scores: pl.DataFrame, options: EvaluationOptions) -> pl.DataFrame:
    """Per algorithm and length: mean ROUGE F1 (in %, over references then documents) with its bootstrap interval,
    the mean of each document's best reference, and the paired difference from Lead-3 with its interval; Lead-3
    first, then the default at Lead-3's length, then by ROUGE-1."""
    rows = []
    for (algorithm, length), group in scores.group_by("algorithm", "length", maintain_order=True):
        row = {"algorithm": algorithm, "documents": group.height, "length": length}
        differences = paired_differences(scores, algorithm, length) if algorithm != LEAD3 else None
        for column, metric in enumerate(METRICS):
            values = group[metric].to_numpy() * 100
            row[metric] = float(values.mean())
            row[f"{metric}_low"], row[f"{metric}_high"] = bootstrap_interval(values, options.resamples, options.seed)
            row[f"{metric}_max"] = float(group[f"{metric}_max"].mean() * 100)
            if differences is None:
                row[f"{metric}_vs_lead3"] = row[f"{metric}_vs_lead3_low"] = row[f"{metric}_vs_lead3_high"] = None
            else:
                row[f"{metric}_vs_lead3"] = float(differences[:, column].mean())
                row[f"{metric}_vs_lead3_low"], row[f"{metric}_vs_lead3_high"] = bootstrap_interval(
                    differences[:, column], options.resamples, options.seed)
        rows.append(row)
    table = pl.DataFrame(rows, infer_schema_length=None)
    return table.sort(pl.col("algorithm") != LEAD3, pl.col("length") != LEAD3_LENGTH, -pl.col("rouge1"))


def markdown_report(corpus_name: str, table: pl.DataFrame) -> str:
    """A Markdown table of the means and intervals, the paired differences from Lead-3 (the line to beat) with
    theirs, and the means over each document's best reference."""
    lines = [f"### {corpus_name}: ROUGE F1 (%), 95 % bootstrap interval, {table['documents'][0]} documents", "",
             "Scores are means over each document's references; \"vs Lead-3\" is the paired difference on the same "
             "documents; \"best reference\" is the mean of each document's highest score (ROUGE-1 / 2 / Lsum).", "",
             "| algorithm | length | ROUGE-1 | ROUGE-2 | ROUGE-Lsum | ROUGE-1 vs Lead-3 | ROUGE-2 vs Lead-3 | "
             "ROUGE-Lsum vs Lead-3 | best reference |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table.iter_rows(named=True):
        cells = [f"{row[m]:.2f} [{row[m + '_low']:.2f}, {row[m + '_high']:.2f}]" for m in METRICS]
        cells += ["" if row[f"{m}_vs_lead3"] is None else
                  f"{row[m + '_vs_lead3']:+.2f} [{row[m + '_vs_lead3_low']:+.2f}, {row[m + '_vs_lead3_high']:+.2f}]"
                  for m in METRICS]
        cells.append(" / ".join(f"{row[m + '_max']:.2f}" for m in METRICS))
        name = f"**{row['algorithm']}** (baseline)" if row["algorithm"] == LEAD3 else row["algorithm"]
        lines.append(f"| {name} | {row['length']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
