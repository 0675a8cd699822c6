"""One summarizer's margin over Lead-3 on a corpus, whole and by halves, at both lengths, in one process.

    .venv/bin/python benchmarks/lead3_margin.py [ALGORITHM] [CORPUS.jsonl]

ALGORITHM (default: the default summarizer) at three sentences and at the reference's word count, minus Lead-3,
and at the reference's word count minus `lead` at the same count; on the whole corpus (default
../shared/corpora/cnndm_dev.jsonl) and on its odd and even lines; ROUGE F1 points with 95 % paired bootstrap
intervals, scored as `seed-digest evaluate` scores (tasks/rouge.score_documents), without the Prefect run around
it. For newsrank on cnndm_dev every line is in its training data: its held-out halves are the ones
benchmarks/train_summarizer.py prints.
"""

import sys
from pathlib import Path

import tasks.rouge as rouge
from tasks.evaluate import (LEAD3_LENGTH, REFERENCE_LENGTH, EvaluationOptions, bootstrap_interval, load_corpus,
                            paired_differences)
from tasks.summary_options import DEFAULT_ALGORITHM

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "cnndm_dev.jsonl"


def main() -> None:
    algorithm = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ALGORITHM
    corpus = load_corpus(sys.argv[2] if len(sys.argv) > 2 else CORPUS)
    rouge.DEFAULT_ALGORITHM = algorithm  # so that it is scored at three sentences too
    scores = rouge.score_documents(corpus, EvaluationOptions(algorithms=(algorithm, "lead")))
    print(f"{algorithm}, {corpus.height} documents, ROUGE-1 / ROUGE-2 / ROUGE-Lsum F1 points, 95 % paired interval")
    for label, differences in (
            ("3 sentences minus lead3", paired_differences(scores, algorithm, LEAD3_LENGTH)),
            ("reference words minus lead3", paired_differences(scores, algorithm, REFERENCE_LENGTH)),
            ("reference words minus lead at reference words",
             paired_differences(scores, algorithm, REFERENCE_LENGTH, baseline="lead"))):
        for part, rows in (("all", differences), ("odd lines", differences[0::2]),
                           ("even lines", differences[1::2])):
            cells = []
            for column in rows.T:
                low, high = bootstrap_interval(column, 1000, 0)
                cells.append(f"{column.mean():+.2f} [{low:+.2f}, {high:+.2f}]")
            print(f"  {label:47s} {part:10s} " + " / ".join(cells))


if __name__ == "__main__":
    main()
