"""Summary quality: ROUGE of every summarizer beside Lead-3 on the shared dev corpora.

    .venv/bin/python benchmarks/summary_quality.py [CORPUS.jsonl ...]

Runs `seed-digest evaluate` (all algorithms at the reference's length in words, Lead-3 and the default at three
sentences, ROUGE-1/2/Lsum F1 with stemming, 95 % bootstrap intervals) on each corpus, default
../shared/corpora/cnndm_dev.jsonl and bbc_dev.jsonl, and prints the Markdown tables, then the default
summarizer's paired difference from Lead-3 at both lengths (same documents, 95 % paired bootstrap interval) read
back from the per-document scores; the tables are left in a temporary data folder whose path is printed.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from tasks.evaluate import LEAD3, LEAD3_LENGTH, METRICS, REFERENCE_LENGTH, bootstrap_interval, paired_differences
from tasks.summary_options import DEFAULT_ALGORITHM

REPO = Path(__file__).resolve().parent.parent
CORPORA = [REPO.parent / "shared" / "corpora" / name for name in ("cnndm_dev.jsonl", "bbc_dev.jsonl")]


def main() -> None:
    corpora = [Path(arg) for arg in sys.argv[1:]] or CORPORA
    data = tempfile.mkdtemp(prefix="seed-digest-quality-")
    for corpus in corpora:
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "flows.cli", "evaluate", "--corpus", str(corpus),
                               "--data", data], cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        print(done.stdout)
        print(f"({time.perf_counter() - began:.0f} s)\n")
    print(f"{DEFAULT_ALGORITHM} minus {LEAD3}, ROUGE F1 points, 95 % paired bootstrap interval:")
    scores = pl.read_parquet(f"{data}/evaluation_scores/*/*.parquet")
    for (corpus,), group in scores.group_by("corpus", maintain_order=True):
        for length in (LEAD3_LENGTH, REFERENCE_LENGTH):
            differences = paired_differences(group, DEFAULT_ALGORITHM, length)
            cells = []
            for metric, difference in zip(METRICS, differences.T):
                low, high = bootstrap_interval(difference, 1000, 0)
                cells.append(f"{metric} {difference.mean():+.2f} [{low:+.2f}, {high:+.2f}]")
            print(f"  {corpus}, {DEFAULT_ALGORITHM} at {length}: " + "; ".join(cells))
    print(f"tables: {data}/evaluations, {data}/evaluation_scores")


if __name__ == "__main__":
    main()
