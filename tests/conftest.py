"""Shared fixtures: a Prefect test harness (a real temporary API server) and small seed corpora on disk."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_ea07a726f6fd36b7.txt"


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def article(topic: str, n: int = 4) -> str:
    """A small, distinct news-like article about `topic`."""
    sentences = [
        f"The council discussed {topic} at length on Monday evening.",
        f"Residents said {topic} had changed the town more than anything in a decade.",
        f"Officials promised a public report on {topic} before the end of the year.",
        f"Critics argued that the plans for {topic} ignored the costs to small businesses.",
        f"A final vote on {topic} is expected in the spring.",
    ]
    return " ".join(sentences[:n])


@pytest.fixture
def corpus(tmp_path: Path, seed_text: str) -> Path:
    """A seed folder with the real seed, a copy and a near copy of it, other formats and bad inputs."""
    root = tmp_path / "seeds"
    root.mkdir()
    shutil.copy(SEED, root / "a_seed.txt")
    (root / "b_seed_copy.txt").write_text(seed_text, encoding="utf-8")
    near = seed_text.replace("There are more than 5,000", "There are now more than 5,000")
    (root / "c_seed_near.txt").write_text(near, encoding="utf-8")
    (root / "d_latin.txt").write_bytes(
        "Café owners in Zürich raised prices again this week. The naïve hope of a quick recovery faded. "
        "Analysts expect déjà vu next year.".encode("cp1252"))
    (root / "e_utf16.txt").write_bytes(("\ufeff" + article("the new bridge")).encode("utf-16-le"))
    (root / "f_page.html").write_text(
        "<html><head><title>Harbour plan approved</title></head><body><nav>Home | News | Sport</nav>"
        f"<article><h1>Harbour plan approved</h1><p>{article('the harbour plan', 3)}</p>"
        f"<p>{article('the harbour budget', 2)}</p></article><footer>Copyright 2026</footer></body></html>",
        encoding="utf-8")
    (root / "g_note.md").write_text(f"# Library reopens\n\n{article('the library')}\n", encoding="utf-8")
    lines = [
        '{"id": "r1", "title": "Rail strike", "text": "%s"}' % article("the rail strike"),
        '{"id": "r2", "title": "No body"}',
        "{not json",
    ]
    (root / "h_feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "i_empty.txt").write_bytes(b"")
    (root / "j_binary.txt").write_bytes(bytes(range(256)) * 8)
    (root / "k_one_sentence.txt").write_text("Only one sentence lives here.", encoding="utf-8")
    return root


def write_articles(folder: Path, numbers: range, topic: str = "topic", parts: int = 6) -> None:
    """One distinct .txt article per number, `parts` small articles long, for runs of many batches."""
    folder.mkdir(exist_ok=True)
    for n in numbers:
        (folder / f"{n:04d}.txt").write_text(" ".join(article(f"{topic} {n} {m}") for m in range(parts)),
                                             encoding="utf-8")


def alive(processes) -> list[str]:
    """Command lines of the psutil processes still running (a zombie has ended; only its exit status is left)."""
    import psutil

    running = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(" ".join(process.cmdline())[:100])
        except psutil.NoSuchProcess:
            pass
    return running


# Columns that say when or in which run a row was made: everything else of two runs of the same inputs must match.
RUN_COLUMNS = {"run_id", "fetched_at", "run_date"}
TABLE_KEYS = (("documents", "input_id"), ("duplicates", "input_id"), ("rejects", "input_id"), ("summaries", "doc_id"))


def written_rows(data, name: str, key: str):
    """A table's rows as a run wrote them, in a stable order, without the columns that say which run."""
    import polars as pl

    frame = pl.read_parquet(f"{data}/{name}/*/*.parquet")
    return frame.select(sorted(set(frame.columns) - RUN_COLUMNS)).sort(key, "path" if "path" in frame.columns else key)
