"""Ingest: encodings, formats and the reasons bad inputs are rejected."""

import json
import os

import pytest

from tasks.ingest import InputError, SeedFile, decode, discover, read_inputs

TEXT = "Café owners said the naïve plan cost “too much” — again."


@pytest.mark.parametrize(("data", "encoding"), [
    (TEXT.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-bom"),
    (b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf-16-le"),
    (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16-be"),
    (TEXT.encode("utf-16-le"), "utf-16-le"),
    (TEXT.encode("utf-16-be"), "utf-16-be"),
    (TEXT.encode("cp1252"), "cp1252"),
])
def test_decode_reads_each_encoding_back_to_the_same_text(data, encoding):
    assert decode(data) == (TEXT, encoding)


def test_decode_reads_cyrillic_single_byte_text():
    text = "Привет, как дела? Это тестовый текст на русском языке."
    decoded, encoding = decode(text.encode("cp1251"))
    assert decoded == text and encoding == "cp1251"


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (b"  \n\t \r\n", "empty"),
    (b"\xef\xbb\xbf", "empty"),
    (bytes(range(256)) * 4, "binary"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "binary"),
    (b"ok\x01\x02\x03\x04\x05\x06\x07\x08 text", "binary"),
])
def test_decode_rejects_with_a_reason(data, reason):
    with pytest.raises(InputError) as caught:
        decode(data)
    assert caught.value.reason == reason
    assert str(caught.value)


def test_discover_walks_folders_and_globs_in_order_and_skips_other_files(tmp_path):
    (tmp_path / "site_a").mkdir()
    (tmp_path / "site_a" / "b.txt").write_text("x")
    (tmp_path / "site_a" / "a.html").write_text("x")
    (tmp_path / "top.md").write_text("x")
    (tmp_path / "image.png").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text("x")
    found = discover(str(tmp_path))
    assert [(f.relative, f.source) for f in found] == [
        ("site_a/a.html", "site_a"), ("site_a/b.txt", "site_a"), ("top.md", tmp_path.name)]
    assert [f.relative for f in discover(str(tmp_path / "**" / "*.txt"))] == ["site_a/b.txt"]
    with pytest.raises(FileNotFoundError, match="neither a folder"):
        discover(str(tmp_path / "missing"))


def test_json_records_become_inputs_or_rejects_one_by_one(tmp_path):
    records = [{"title": "One", "text": "First text.", "source": "wire"}, {"title": "Two"}, "not an object"]
    (tmp_path / "batch.json").write_text(json.dumps(records))
    (tmp_path / "feed.jsonl").write_text('{"body": "Body text."}\n\n{broken\n')
    (tmp_path / "single.json").write_text('{"content": "Only one."}')
    inputs, rejects, _ = read_inputs(discover(str(tmp_path)))
    assert inputs.select("path", "record", "source", "raw", "title_hint").rows() == [
        ("batch.json", 0, "wire", "First text.", "One"),
        ("feed.jsonl", 0, tmp_path.name, "Body text.", None),
        ("single.json", None, tmp_path.name, "Only one.", None),
    ]
    assert rejects.select("path", "record", "reason").rows() == [
        ("batch.json", 1, "no_text"), ("batch.json", 2, "invalid_json"), ("feed.jsonl", 2, "invalid_json")]
    assert rejects["text"].to_list()[2] == "{broken"
    assert inputs["input_id"].n_unique() == 3


def test_unreadable_file_is_a_reject_not_a_crash(tmp_path):
    missing = SeedFile(str(tmp_path / "gone.txt"), "gone.txt", "seeds")
    inputs, rejects, _ = read_inputs([missing])
    assert inputs.height == 0
    assert rejects.select("reason", "stage").row(0) == ("unreadable", "ingest")


def test_input_id_changes_with_content_and_not_with_read_time(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Some text. More text.")
    first = read_inputs(discover(str(tmp_path)))[0]["input_id"][0]
    assert read_inputs(discover(str(tmp_path)))[0]["input_id"][0] == first
    path.write_text("Other text. More text.")
    assert read_inputs(discover(str(tmp_path)))[0]["input_id"][0] != first


def test_permission_denied_is_a_reject_but_an_io_error_is_retried(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    from tasks.ingest import TransientSourceError

    (tmp_path / "a.txt").write_text("Some text. More text.")
    files = discover(str(tmp_path))

    def failing(code):
        def read_bytes(self):
            raise OSError(code, os.strerror(code))
        return read_bytes

    monkeypatch.setattr(Path, "read_bytes", failing(errno.EACCES))
    assert read_inputs(files)[1]["reason"].to_list() == ["unreadable"]
    monkeypatch.setattr(Path, "read_bytes", failing(errno.EIO))
    with pytest.raises(TransientSourceError):
        read_inputs(files)


@pytest.mark.parametrize("steps", ["prefect", "threads"])
def test_a_read_batch_is_tried_again_after_a_transient_error(steps, tmp_path, monkeypatch, caplog, prefect_server):
    """As the flow's Prefect task (retried by Prefect) and as a run without Prefect hands it out (ThreadSteps),
    which logs the new try."""
    import logging

    from prefect import flow

    import flows.digest_steps
    from flows.compute import workers
    from flows.digest import PrefectTasks
    from flows.digest_steps import Carried, ThreadSteps, read_step
    from flows.stopping import result_when_done
    from tasks.batches import files_frame
    from tasks.fetch import FetchOptions

    if not os.path.exists("/proc/self/mem"):
        pytest.skip("needs Linux's /proc/self/mem for a real EIO in the worker process")
    seed = tmp_path / "a.txt"
    seed.write_text("Some text. More text.")
    files = discover(str(tmp_path))
    # The batch is read in a worker process, where no monkeypatch reaches: the first attempt reads a file whose
    # reads fail with a real EIO (the worker's own /proc/self/mem at offset 0), the retry reads the text again.
    seed.unlink()
    seed.symlink_to("/proc/self/mem")
    real_run_batch, attempts = flows.digest_steps.run_batch, []

    def flaky_then_repaired(batch):
        attempts.append(batch)
        try:
            return real_run_batch(batch)
        finally:
            if seed.is_symlink():
                seed.unlink()
                seed.write_text("Some text. More text.")

    monkeypatch.setattr(flows.digest_steps, "run_batch", flaky_then_repaired)
    monkeypatch.setattr(flows.digest_steps, "READ_RETRY_DELAYS", (0.0, 0.0, 0.0))
    read_task = PrefectTasks.tasks[read_step]
    monkeypatch.setitem(PrefectTasks.tasks, read_step, read_task.with_options(retry_delay_seconds=0))
    arguments = (read_step, Carried(files_frame(files)), FetchOptions(), Carried(None))

    @flow
    def read_once():
        with workers(count=1):
            return result_when_done(PrefectTasks().submit(*arguments))

    if steps == "prefect":
        frames = read_once()
    else:
        threads = ThreadSteps(logging.getLogger("seed-digest-test"))
        with workers(count=1):
            frames = result_when_done(threads.submit(*arguments))
        threads.close()
    assert len(attempts) == 2 and frames["normalized"].height == 1 and frames["rejects"].height == 0
    if steps == "threads":
        assert "a read batch failed (reading " in caplog.text and "tried again in 0 s" in caplog.text
