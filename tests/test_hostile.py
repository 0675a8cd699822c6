"""Hostile input: no single input can stop a run, and every path the source walk meets gets a row."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from flows.compute import run_batch, workers
from flows.digest import digest
from tasks.batches import Batch
from tasks.ingest import MAX_DOCUMENT_BYTES, REJECTS_SCHEMA, decode
from tests.conftest import REPO, article

pytestmark = pytest.mark.usefixtures("prefect_server")

CURLY = "\u201cWe will rebuild,\u201d the mayor said on Monday. \u201cIt will take years.\u201d "


def rows(data, table: str) -> pl.DataFrame:
    return pl.read_parquet(f"{data}/{table}/*/*.parquet")


@pytest.fixture
def hostile(tmp_path, seed_text):
    root = tmp_path / "hostile"
    root.mkdir()
    (root / "a_good.txt").write_text(article("the harbour") + "\n", encoding="utf-8")
    (root / "b_good.txt").write_text(seed_text, encoding="utf-8")
    os.symlink(root / "nowhere.txt", root / "c_broken_link.txt")
    os.symlink(root / "d_loop.txt", root / "d_loop.txt")
    (root / "e_empty_array.json").write_text("[]", encoding="utf-8")
    (root / "f_empty.jsonl").write_bytes(b"")
    records = [f'{{"title": "Rail strike {n}", "text": "{article(f"the rail strike {n}")}"}}' for n in (1, 2)]
    (root / "g_utf16.jsonl").write_bytes(("\n".join(records) + "\n").encode("utf-16"))
    (root / "h_stray_byte.txt").write_bytes((CURLY * 3).encode("utf-8") + b"\xff" + article("the dam").encode())
    (root / "i_truncated.txt").write_bytes((article("the market") + " \u2026").encode("utf-8")[:-1])
    (root / os.fsdecode(b"j_caf\xe9 latin-1 name.txt")).write_text(article("the cafe"), encoding="utf-8")
    sentence = "The committee met again and talked about the budget for a long time. "
    (root / "k_big.txt").write_text(sentence * (MAX_DOCUMENT_BYTES // len(sentence) + 1), encoding="utf-8")
    (root / "l_many_sentences.txt").write_text(
        " ".join(f"Sentence number {n} of a very long report said something new." for n in range(3000)),
        encoding="utf-8")
    for name, text in HEADERS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


UNPUNCTUATED = "The city council voted on Tuesday to close the old bridge for repairs after engineers found cracks"
HEADERS = {  # news layouts: (file, its text) -> the title and the body's first words in EXPECTED_TITLES
    "m_date_line.txt": f"Storm floods the coast\nPublished Monday 9 March 2026\n\n{article('the storm')}\n",
    "n_question_byline.txt": f"Will the bridge ever open?\nBy Amira Haddad | 5 May 2026\n\n{article('the bridge')}\n",
    "o_hard_wrapped.txt": "Harbour plan approved\n\n" + textwrap.fill(article("the harbour plan", 5), 72) + "\n",
    "p_unpunctuated.txt": f"Council closes the old bridge\n{UNPUNCTUATED}\n{article('the repairs')}\n",
}
EXPECTED_TITLES = {
    "m_date_line.txt": ("Storm floods the coast", "The council discussed the storm"),
    "n_question_byline.txt": ("Will the bridge ever open?", "The council discussed the bridge"),
    "o_hard_wrapped.txt": ("Harbour plan approved", "The council discussed the harbour plan at length"),
    "p_unpunctuated.txt": ("Council closes the old bridge", UNPUNCTUATED),
}


def test_every_path_gets_a_row_and_no_input_stops_the_run(hostile, tmp_path):
    data = tmp_path / "data"
    report = digest(source=str(hostile), data_dir=str(data), batch_size=3)

    assert report.files == 16
    documents, rejects = rows(data, "documents"), rows(data, "rejects")
    assert report.inputs == documents.height + rows(data, "duplicates").height + rejects.height == 17
    reasons = dict(rejects.select("path", "reason").iter_rows())
    assert reasons == {"c_broken_link.txt": "unreadable", "d_loop.txt": "unreadable",
                       "e_empty_array.json": "empty", "f_empty.jsonl": "empty", "k_big.txt": "too_large"}
    details = dict(rejects.select("path", "detail").iter_rows())
    assert "does not exist" in details["c_broken_link.txt"] and "loop" in details["d_loop.txt"]
    assert "bytes" in details["k_big.txt"]
    assert rejects.filter(pl.col("path") == "k_big.txt")["size_bytes"][0] > MAX_DOCUMENT_BYTES

    by_path = {(path, record): row for path, record, row in
               zip(documents["path"], documents["record"], documents.iter_rows(named=True))}
    assert {record for path, record in by_path if path == "g_utf16.jsonl"} == {0, 1}
    assert by_path[("g_utf16.jsonl", 0)]["encoding"] == "utf-16-le"
    assert by_path[("g_utf16.jsonl", 1)]["title"] == "Rail strike 2"
    stray = by_path[("h_stray_byte.txt", None)]
    assert stray["encoding"] == "utf-8 (1 invalid byte replaced)" and "\u201cWe will rebuild,\u201d" in stray["text"]
    assert by_path[("i_truncated.txt", None)]["encoding"].startswith("utf-8")
    assert ("j_caf\\xe9 latin-1 name.txt", None) in by_path
    long_report = by_path[("l_many_sentences.txt", None)]
    assert long_report["sentence_count"] == 3000
    assert rows(data, "summaries").height == documents.height
    assert rows(data, "runs")["files"].to_list() == [16]
    for name, (title, opening) in EXPECTED_TITLES.items():
        assert by_path[(name, None)]["title"] == title, name
        assert by_path[(name, None)]["text"].startswith(opening), name
        assert title not in by_path[(name, None)]["text"], name


def test_a_rerun_over_hostile_input_adds_nothing(hostile, tmp_path):
    data = tmp_path / "data"
    digest(source=str(hostile), data_dir=str(data))
    again = digest(source=str(hostile), data_dir=str(data))
    assert again.run_id is None and again.already_recorded == 17


def kill_on_marker(frame: pl.DataFrame) -> dict:
    """A batch function that kills its worker on the input whose text says so, fails on another and never
    ends on a third."""
    for text in frame["text"]:
        if "KILL" in text:
            os.kill(os.getpid(), signal.SIGKILL)
        if "FAIL" in text:
            raise ValueError("this input is bad")
        if "HANG" in text:
            signal.pause()
    return {"kept": frame.select("input_id"), "rejects": pl.DataFrame(schema=REJECTS_SCHEMA)}


def marked_inputs(texts: list[str]) -> pl.DataFrame:
    from tasks.ingest import RECORD_COLUMNS

    frame = pl.DataFrame({**{name: [None] * len(texts) for name in RECORD_COLUMNS},
                          "input_id": [f"id{n}" for n in range(len(texts))], "text": texts},
                         schema={**RECORD_COLUMNS, "text": pl.String})
    return frame.with_columns(pl.lit("p").alias("source"), pl.lit("p.txt").alias("path"), pl.lit("x").alias("uri"),
                              pl.lit("txt").alias("format"), pl.lit(0).alias("size_bytes"),
                              pl.lit("").alias("content_sha256"))


def test_an_input_that_never_ends_is_a_timed_out_reject_and_the_rest_go_on(monkeypatch):
    import flows.compute

    monkeypatch.setattr(flows.compute, "BATCH_DEADLINE_BASE_SECONDS", 12.0)  # a new worker starts in it
    monkeypatch.setattr(flows.compute, "BATCH_DEADLINE_SECONDS_PER_INPUT", 0.5)
    with workers(count=2):
        frames = run_batch(Batch("clean", kill_on_marker, marked_inputs(["fine one", "HANG here", "fine two"])))
    assert sorted(frames["kept"]["input_id"]) == ["id0", "id2"]
    rejects = frames["rejects"]
    assert rejects.select("input_id", "reason").rows() == [("id1", "timed_out")]
    assert "still running after 12 s" in rejects["detail"][0]


def test_a_worker_killed_by_one_input_costs_only_that_input(corpus):
    frame = marked_inputs(["fine one", "KILL me", "fine two", "FAIL me", "fine three"])
    with workers(count=2):
        frames = run_batch(Batch("clean", kill_on_marker, frame))
        after = run_batch(Batch("clean", kill_on_marker, frame.filter(pl.col("text").str.starts_with("fine"))))
    assert sorted(frames["kept"]["input_id"]) == ["id0", "id2", "id4"]
    assert dict(frames["rejects"].select("input_id", "reason").iter_rows()) == {"id1": "crashed", "id3": "failed"}
    assert "ValueError: this input is bad" in frames["rejects"].filter(pl.col("input_id") == "id3")["detail"][0]
    assert after["kept"].height == 3  # the pool was restarted and goes on


@pytest.mark.parametrize("data, expected", [
    ((CURLY * 2).encode() + b"\xff", ("utf-8 (1 invalid byte replaced)", "\ufffd")),
    ((CURLY * 2).encode()[:-2], ("utf-8 (1 invalid byte replaced)", "\ufffd")),
    ("Caf\u00e9 owners in Z\u00fcrich raised prices again.".encode("cp1252"), ("cp1252", "Caf\u00e9")),
])
def test_one_bad_byte_costs_one_character(data, expected):
    text, encoding = decode(data)
    assert encoding == expected[0] and expected[1] in text
    assert "\u00e2\u20ac" not in text  # no mojibake of the curly quotes


def unprivileged() -> list[str] | None:
    """A command prefix under which a mode-000 folder cannot be listed: nothing for a plain user; for root,
    setpriv without the capabilities that override file permissions; None where neither is possible."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    return prefix if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0 else None


def test_a_folder_that_cannot_be_listed_is_a_reject_and_the_rest_is_read(tmp_path):
    prefix = unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: every folder can be listed")
    seeds, data = tmp_path / "seeds", tmp_path / "data"
    (seeds / "locked").mkdir(parents=True)
    (seeds / "open").mkdir()
    (seeds / "locked" / "hidden.txt").write_text(article("the locked room"), encoding="utf-8")
    (seeds / "open" / "story.txt").write_text(article("the open door"), encoding="utf-8")
    (seeds / "locked").chmod(0)
    command = [*prefix, sys.executable, "-m", "flows.cli", "run", "--source", str(seeds), "--data", str(data),
               "--no-progress"]
    try:
        runs = [subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300) for _ in range(2)]
    finally:
        (seeds / "locked").chmod(0o755)
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert "nothing new" in runs[1].stdout + runs[1].stderr
    rejects = rows(data, "rejects")
    assert rejects.select("path", "format", "reason").rows() == [("locked", "folder", "unreadable")]
    assert "cannot be listed" in rejects["detail"][0]
    assert rows(data, "documents")["path"].to_list() == ["open/story.txt"]
    assert rows(data, "runs").select("files", "inputs").rows() == [(2, 2)]
