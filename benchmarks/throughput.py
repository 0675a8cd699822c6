"""Throughput and memory of the seed-digest flow beside a plain loop that calls sumy on the same files.

    .venv/bin/python benchmarks/throughput.py [--corpus ../shared/corpora/bbc_dev.jsonl] [--workers N]

Materialises each JSON Lines record as a .txt file, then runs, each in its own process:
  flow        `seed-digest run` (ephemeral Prefect server, process pool, all stages, Parquet written)
  plain loop  read each file, sumy PlaintextParser + LexRank (3 sentences), nothing else
and prints documents per second and peak resident memory (the whole process tree, sampled every 0.1 s).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "bbc_dev.jsonl"

PLAIN_LOOP = """
import sys
from pathlib import Path
import sentencex
from sumy.nlp.stemmers import Stemmer
from sumy.parsers.plaintext import PlaintextParser
from sumy.summarizers.lex_rank import LexRankSummarizer
from sumy.utils import get_stop_words
from tasks.language import WordTokenizer

class Tokenizer(WordTokenizer):  # sumy's own needs NLTK punkt data, a download
    def to_sentences(self, paragraph):
        return [s.strip() for s in sentencex.segment("en", paragraph) if s.strip()]

summarizer = LexRankSummarizer(Stemmer("english"))
summarizer.stop_words = get_stop_words("english")
tokenizer = Tokenizer("english")
for path in sorted(Path(sys.argv[1]).glob("*.txt")):
    parser = PlaintextParser.from_string(path.read_text(encoding="utf-8"), tokenizer)
    summarizer(parser.document, 3)
"""


def materialise(corpus: Path, folder: Path) -> int:
    count = 0
    with corpus.open(encoding="utf-8") as lines:
        for count, line in enumerate(lines, 1):
            record = json.loads(line)
            (folder / f"{count:05d}_{record['id']}.txt").write_text(record["text"], encoding="utf-8")
    return count


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak tree RSS (KiB) of a command."""
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_kib(process.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"{command[2:4]} failed:\n{process.stderr.read().decode()}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        seeds, data = Path(scratch, "seeds"), Path(scratch, "data")
        seeds.mkdir()
        documents = materialise(args.corpus, seeds)
        flow_seconds, flow_peak = measure([sys.executable, "-m", "flows.cli", "run", "--source", str(seeds),
                                           "--data", str(data), "--workers", str(args.workers), "--no-progress"])
        run = pl.read_parquet(data / "runs" / "*" / "*.parquet").row(0, named=True)
        loop_seconds, loop_peak = measure([sys.executable, "-c", PLAIN_LOOP, str(seeds)])
    stages = run["stage_seconds"]
    print(f"corpus: {args.corpus.name}, {documents} files; workers: {args.workers}; cores: {os.cpu_count()}")
    print(f"flow: {run['documents']} documents, {run['duplicates']} duplicates, {run['rejects']} rejects, "
          f"{run['summaries']} summaries")
    print(f"{'':<34}{'seconds':>9}{'docs/s':>9}{'peak RSS MiB':>14}")
    print(f"{'flow, whole command':<34}{flow_seconds:>9.1f}{documents / flow_seconds:>9.1f}{flow_peak / 1024:>14.0f}")
    flow_run = (run["finished_at"] - run["started_at"]).total_seconds()
    print(f"{'flow run (no server start-up)':<34}{flow_run:>9.1f}{documents / flow_run:>9.1f}{'':>14}")
    print(f"{'plain sumy loop':<34}{loop_seconds:>9.1f}{documents / loop_seconds:>9.1f}{loop_peak / 1024:>14.0f}")
    print("flow stages (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in stages.items()))


if __name__ == "__main__":
    main()
