"""Throughput and memory of the seed-digest flow beside a plain loop that calls sumy on the same files.

    .venv/bin/python benchmarks/throughput.py [--documents 20000 100000] [--workers N]
    .venv/bin/python benchmarks/throughput.py --corpus ../shared/corpora/bbc_dev.jsonl

Writes each corpus with ../shared/tools/scale_corpus.py (or materialises a JSON Lines corpus as .txt files),
then runs, each in its own process, side by side:
  run         `seed-digest run` with no Prefect API configured (worker pool, all stages, Parquet written; the
              steps handed to the pool by threads of the command, without Prefect)
  again       the same command once more: nothing new
  plain loop  read each file, sumy PlaintextParser + LexRank (3 sentences), nothing else
  flow run    `seed-digest run` into a new data folder against a `prefect server start` that was already running
              and had served a run (PREFECT_API_URL, as a scheduled run has it): a Prefect flow run, each batch a
              task run
and prints seconds, documents per second, their ratio, peak memory of the whole process tree (RSS summed over
its processes, every 0.1 s; and PSS, which counts a shared page once, every second), the stage functions' own
seconds (summed over batches and workers) and the seconds outside the run's body (start-up, listing, shut-down;
for the flow run also Prefect's flow-run bookkeeping: an upper bound on Prefect's share).
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
SCALE_CORPUS = REPO.parent / "shared" / "tools" / "scale_corpus.py"

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
for path in sorted(Path(sys.argv[1]).rglob("*.txt")):
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


def tree_pids(root: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
            children.setdefault(int(parent.split()[1]), []).append(int(entry.name))
    pids, stack = [], [root]
    while stack:
        pids.append(stack.pop())
        stack.extend(children.get(pids[-1], []))
    return pids


def memory_kib(pids: list[int], field: str, source: str) -> int:
    """A memory field ("VmRSS" of status, "Pss" of smaps_rollup) summed over processes, in KiB."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/{source}").read_text()
        except OSError:
            continue
        line = next((line for line in text.splitlines() if line.startswith(field + ":")), None)
        total += int(line.split()[1]) if line else 0
    return total


def body_seconds(data: Path) -> float:
    """The run body's seconds, from the run's row (its start to its commit)."""
    run = pl.read_parquet(data / "runs" / "*" / "*.parquet").row(0, named=True)
    return (run["finished_at"] - run["started_at"]).total_seconds()


def measure(command: list[str], environment: dict | None = None) -> tuple[float, int, int]:
    """Wall seconds and peak tree RSS and PSS (KiB) of a command. The RSS sum counts a page shared by several
    processes (a library's code) once per process; PSS divides it among them, so its sum is the memory the tree
    occupies. RSS is sampled every 0.1 s; PSS, which the kernel must count page by page, every second."""
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_rss = peak_pss = 0
    samples = 0
    while process.poll() is None:
        pids = tree_pids(process.pid)
        peak_rss = max(peak_rss, memory_kib(pids, "VmRSS", "status"))
        if samples % 10 == 0:
            peak_pss = max(peak_pss, memory_kib(pids, "Pss", "smaps_rollup"))
        samples += 1
        time.sleep(0.1)
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"{command[2:4]} failed:\n{process.stderr.read().decode()}")
    return seconds, peak_rss, peak_pss


def run_corpus(seeds: Path, data: Path, documents: int, workers: int) -> None:
    # The command as an ad hoc run with no Prefect API configured, whatever this shell's environment or Prefect
    # profile names: a Prefect home of its own, without profiles.
    no_api = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    no_api["PREFECT_HOME"] = str(data.with_name("prefect-home-unused"))
    run_seconds, run_rss, run_pss = measure([sys.executable, "-m", "flows.cli", "run", "--source", str(seeds),
                                             "--data", str(data), "--workers", str(workers), "--no-progress"], no_api)
    again_seconds, _, _ = measure([sys.executable, "-m", "flows.cli", "run", "--source", str(seeds),
                                   "--data", str(data), "--no-progress"], no_api)
    run = pl.read_parquet(data / "runs" / "*" / "*.parquet").row(0, named=True)
    loop_seconds, loop_rss, loop_pss = measure([sys.executable, "-c", PLAIN_LOOP, str(seeds)])
    sys.path.insert(0, str(REPO))
    from tests.test_server import RealServer  # `prefect server start` on a loopback port, as the tests run it

    home = data.with_name("prefect-home")
    home.mkdir()
    server = RealServer(home)
    server.start()
    try:
        # A running server has served runs before: the first requests of its life (FastAPI builds its routes on
        # the first call, about 0.8 s here) are paid by a small run of the bundled seed, not by the measured one.
        measure([sys.executable, "-m", "flows.cli", "run", "--source", "seeds", "--data", str(data.with_name("first")),
                 "--no-progress"], server.env)
        served_seconds, served_rss, served_pss = measure(
            [sys.executable, "-m", "flows.cli", "run", "--source", str(seeds), "--data", str(data.with_name("served")),
             "--workers", str(workers), "--no-progress"], server.env)
    finally:
        server.stop()
    served_outside = served_seconds - body_seconds(data.with_name("served"))
    stages = run["stage_seconds"]
    body = body_seconds(data)
    print(f"{documents} files; workers: {workers}; cores: {os.cpu_count()}; run: {run['documents']} documents, "
          f"{run['duplicates']} duplicates, {run['rejects']} rejects, {run['summaries']} summaries")
    print(f"{'':<34}{'seconds':>9}{'docs/s':>9}{'peak RSS MiB':>14}{'peak PSS MiB':>14}")
    print(f"{'run, whole command':<34}{run_seconds:>9.1f}{documents / run_seconds:>9.1f}{run_rss / 1024:>14.0f}"
          f"{run_pss / 1024:>14.0f}")
    print(f"{'plain sumy loop':<34}{loop_seconds:>9.1f}{documents / loop_seconds:>9.1f}{loop_rss / 1024:>14.0f}"
          f"{loop_pss / 1024:>14.0f}")
    print(f"{'flow run, on a running server':<34}{served_seconds:>9.1f}{documents / served_seconds:>9.1f}"
          f"{served_rss / 1024:>14.0f}{served_pss / 1024:>14.0f}   (the server's own memory not counted)")
    print(f"{'ratio (run docs/s / loop docs/s)':<34}{loop_seconds / run_seconds:>18.2f}"
          f"   flow run on a running server {loop_seconds / served_seconds:.2f}")
    print(f"{'nothing new, whole command':<34}{again_seconds:>9.1f}")
    outside = run_seconds - body
    print(f"run body {body:.1f} s; outside it (start-up, listing, shut-down) {outside:.1f} s = "
          f"{100 * outside / run_seconds:.0f} % of the command")
    print(f"flow run on a running server: body {served_seconds - served_outside:.1f} s; outside it (start-up, "
          f"listing, Prefect's flow-run bookkeeping, shut-down) {served_outside:.1f} s = "
          f"{100 * served_outside / served_seconds:.0f} % of the command")
    print("stage functions' own seconds, summed over batches and workers: "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in stages.items() if seconds is not None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, nargs="+", default=[20000, 100000])
    parser.add_argument("--corpus", type=Path, help="a JSON Lines corpus instead of the scale corpus")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    sizes = [None] if args.corpus else args.documents
    for size in sizes:
        with tempfile.TemporaryDirectory() as scratch:
            seeds, data = Path(scratch, "seeds"), Path(scratch, "data")
            if args.corpus:
                seeds.mkdir()
                documents = materialise(args.corpus, seeds)
                print(f"corpus: {args.corpus.name}")
            else:
                subprocess.run([sys.executable, str(SCALE_CORPUS), str(seeds), "--documents", str(size)], check=True,
                               stdout=subprocess.DEVNULL)
                documents = size
                print(f"corpus: scale_corpus.py --documents {size}")
            run_corpus(seeds, data, documents, args.workers)
            print()


if __name__ == "__main__":
    main()
