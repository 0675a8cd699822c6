"""Remote sources against real servers on loopback: an S3 API (moto's server, in a process of its own) and an HTTP
server serving a feed, a sitemap, pages, 304s, a slow answer, a 500 then a 200, a 404, a redirect loop and
oversized bodies. The flow runs as a user runs it; nothing inside a process is mocked."""

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import polars as pl
import pytest

from flows.digest import digest
from tasks.fetch import redact
from tasks.sources import check_source, entries
from tests.conftest import article


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The S3 API's address and credentials, as a user gives them: in the environment, which botocore reads. Set when
# the tests are collected, before any worker process starts, so that the workers inherit them.
S3_PORT = free_port()
S3_SECRET = "s3-secret-never-recorded"
os.environ.update(AWS_ACCESS_KEY_ID="AKIDSEEDDIGESTTEST", AWS_SECRET_ACCESS_KEY=S3_SECRET,
                  AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{S3_PORT}")
BUCKET = "seed-bucket"
SLOW_SECONDS = 4  # the slow page answers after this; the tests' fetch timeout is 1 s
BIG = 17 << 20  # over the 16 MiB cap of a page

pytestmark = pytest.mark.usefixtures("prefect_server")


def page(topic: str) -> bytes:
    return (f"<html><head><title>{topic.title()}</title></head><body><article><h1>{topic.title()}</h1>"
            f"<p>{article(topic, 5)}</p></article></body></html>").encode()


class Site:
    """A real HTTP server: pages with ETags (304 when asked with the current one), a feed and a sitemap of them,
    and the pages that go wrong. It records every request's method, path and status."""

    def __init__(self):
        self.pages = {"/pages/a.html": (page("the harbour plan"), '"a1"'),
                      "/pages/b.html": (page("the library hours"), '"b1"'),
                      "/pages/flaky.html": (page("the tram extension"), '"f1"')}
        self.failures_left = {"/pages/flaky.html": 1}  # a 500 first, then the page
        self.requests: list[tuple[str, str, int]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.site = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def feed(self) -> bytes:
        links = [*self.pages, "/slow.html", "/missing.html", "/loop.html", "/big.html", "/trickle.html"]
        items = "".join(f"<item><title>{link}</title><link>{self.url(link)}</link></item>" for link in links)
        return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title><link>{self.url("/")}</link>'
                f"<description>d</description>{items}</channel></rss>").encode()

    def statuses(self, path: str) -> list[int]:
        return [status for _, requested, status in self.requests if requested.split("?")[0] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status: int, body: bytes = b"", headers: dict | None = None):
        self.server.site.requests.append((self.command, self.path, status))
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        site, path = self.server.site, self.path.split("?")[0]
        if path == "/feed.xml":
            return self.answer(200, site.feed(), {"Content-Type": "application/rss+xml"})
        if path == "/sitemap-index.xml":
            return self.answer(200, (f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap>'
                                     f'<loc>{site.url("/sitemap.xml")}</loc></sitemap></sitemapindex>').encode())
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{site.url(link)}</loc></url>" for link in ("/pages/a.html", "/pages/b.html"))
            return self.answer(200, f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
                               .encode(), {"Content-Type": "application/xml"})
        if site.failures_left.get(path):
            site.failures_left[path] -= 1
            return self.answer(500, b"try later")
        if path in site.pages:
            body, etag = site.pages[path]
            if self.headers.get("If-None-Match") == etag:
                return self.answer(304, headers={"ETag": etag})
            return self.answer(200, body, {"ETag": etag, "Content-Type": "text/html; charset=utf-8",
                                           "Last-Modified": "Mon, 09 Mar 2026 10:00:00 GMT"})
        if path == "/slow.html":  # recorded as it comes (status 0): the client gives up before the answer
            site.requests.append((self.command, self.path, 0))
            time.sleep(SLOW_SECONDS)
            return None
        if path == "/loop.html":
            return self.answer(302, headers={"Location": "/loop.html"})
        if path == "/big.html":  # says its size: refused without reading the body
            return self.answer_big({"Content-Length": str(BIG)})
        if path == "/trickle.html":  # does not say it (read until the connection closes): stopped at the cap
            return self.answer_big({})
        return self.answer(404, b"no such page")

    def answer_big(self, headers: dict):
        etag = '"big1"'
        if self.headers.get("If-None-Match") == etag:
            return self.answer(304, headers={"ETag": etag})
        self.server.site.requests.append((self.command, self.path, 200))
        self.send_response(200)
        for name, value in {"ETag": etag, "Content-Type": "text/html", **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for _ in range(BIG >> 20):
                self.wfile.write(b"x" * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def site():
    served = Site()
    yield served
    served.close()


class S3:
    """moto's S3 server on loopback in a process of its own; its access log says which objects were downloaded."""

    def __init__(self, log_path, port: int = S3_PORT):
        import boto3

        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=self.log, stderr=self.log)
        self.client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        for _ in range(300):
            try:
                self.client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not answering yet
                time.sleep(0.1)
        self.client.create_bucket(Bucket=BUCKET)

    def put(self, key: str, body: bytes):
        self.client.put_object(Bucket=BUCKET, Key=key, Body=body)

    def downloads(self) -> list[str]:
        """Keys of the objects read (GET of an object, not of a listing), in order."""
        lines = self.log_path.read_text().splitlines()
        return [line.split('"GET /')[1].split(" ")[0].split("/", 1)[1] for line in lines
                if f'"GET /{BUCKET}/' in line]

    def close(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def s3(tmp_path):
    server = S3(tmp_path / "moto.log")
    yield server
    server.close()


def table(data, name: str) -> pl.DataFrame:
    files = list(data.glob(f"{name}/*/*.parquet"))
    return pl.read_parquet(files, hive_partitioning=True) if files else pl.DataFrame()


def parquet_files(data) -> set:
    return {path.relative_to(data) for path in data.rglob("*.parquet")}


def accounted(report) -> bool:
    return report.documents + report.duplicates + report.rejects == report.inputs


def test_bucket_objects_added_changed_and_deleted_between_runs(s3, tmp_path):
    data, source = tmp_path / "data", f"s3://{BUCKET}/seeds/"
    s3.put("seeds/a.txt", article("the harbour plan", 5).encode())
    s3.put("seeds/site/b.html", page("the library hours"))
    s3.put("seeds/c.jsonl", (f'{{"title": "Rail", "text": "{article("the rail strike")}"}}\n'
                             f'{{"title": "Bus", "text": "{article("the bus lanes")}"}}\n').encode())
    s3.put("seeds/big.txt", b"x" * BIG)
    s3.put("seeds/photo.png", b"\x89PNG")  # not a seed file's extension: not listed
    s3.put("elsewhere/z.txt", article("another prefix").encode())

    first = digest(source=source, data_dir=str(data))
    assert (first.files, first.inputs, first.documents, first.rejects) == (4, 5, 4, 1)
    assert (first.fetched, first.skipped) == (3, 0)
    assert accounted(first)
    assert sorted(s3.downloads()) == ["seeds/a.txt", "seeds/c.jsonl", "seeds/site/b.html"]  # big.txt: size first
    documents = table(data, "documents")
    row = documents.filter(pl.col("path") == "a.txt").row(0, named=True)
    assert row["uri"] == f"s3://{BUCKET}/seeds/a.txt" and row["etag"].startswith('"') and row["modified_at"]
    assert documents.filter(pl.col("path") == "site/b.html")["source"].to_list() == ["site"]
    assert documents.filter(pl.col("path") == "c.jsonl")["record"].sort().to_list() == [0, 1]
    big = table(data, "rejects").row(0, named=True)
    assert (big["path"], big["reason"]) == ("big.txt", "too_large") and "17,825,792 bytes" in big["detail"]

    written, downloads = parquet_files(data), len(s3.downloads())
    again = digest(source=source, data_dir=str(data))
    assert again.run_id is None and (again.files, again.skipped, again.fetched) == (4, 4, 0)
    assert again.already_recorded == 5
    assert len(s3.downloads()) == downloads and parquet_files(data) == written  # downloads nothing, writes nothing

    s3.put("seeds/a.txt", article("the harbour plan, revised", 5).encode())
    s3.client.delete_object(Bucket=BUCKET, Key="seeds/site/b.html")
    s3.put("seeds/d.md", f"# Parks\n\n{article('the new parks')}\n".encode())
    third = digest(source=source, data_dir=str(data))
    assert (third.files, third.fetched, third.skipped, third.inputs, third.documents) == (4, 2, 2, 2, 2)
    assert s3.downloads()[downloads:] == ["seeds/a.txt", "seeds/d.md"] or \
        sorted(s3.downloads()[downloads:]) == ["seeds/a.txt", "seeds/d.md"]
    runs = table(data, "runs").sort("started_at")
    assert runs.select("files", "fetched", "skipped", "inputs").rows() == [(4, 3, 0, 5), (4, 2, 2, 2)]
    assert runs["source"].to_list() == [source, source]
    assert table(data, "documents").filter(pl.col("path") == "a.txt").height == 2  # both versions, each once
    assert_no_secret(data, S3_SECRET)


def test_a_credentials_block_gives_the_store_its_options(tmp_path, caplog):
    from prefect.blocks.system import Secret

    port = free_port()
    elsewhere = S3(tmp_path / "elsewhere.log", port)  # an S3 API that only the block's options point to
    try:
        elsewhere.put("seeds/a.txt", article("the harbour plan", 5).encode())
        Secret(value={"key": "AKIDBLOCK", "secret": "block-secret-value",
                      "endpoint_url": f"http://127.0.0.1:{port}"}).save("seed-store", overwrite=True)
        data = tmp_path / "data"
        report = digest(source=f"s3://{BUCKET}/seeds/", data_dir=str(data), credentials_block="seed-store")
        assert (report.files, report.documents) == (1, 1) and elsewhere.downloads() == ["seeds/a.txt"]
        assert_no_secret(data, "block-secret-value")
        assert "block-secret-value" not in caplog.text
    finally:
        elsewhere.close()


def test_feed_pages_are_fetched_politely_within_bounds_and_again_only_when_changed(site, tmp_path):
    data, source = tmp_path / "data", site.url("/feed.xml")
    first = digest(source=source, data_dir=str(data), fetch_timeout=1)
    assert (first.files, first.inputs, first.documents, first.rejects, first.fetched) == (8, 8, 3, 5, 3)
    assert accounted(first)
    documents = table(data, "documents")
    row = documents.filter(pl.col("path") == f"{site.host}/pages/a.html").row(0, named=True)
    assert (row["uri"], row["source"], row["etag"], row["format"]) == (site.url("/pages/a.html"), "127.0.0.1",
                                                                       '"a1"', "html")
    assert row["title"] == "The Harbour Plan" and row["modified_at"].isoformat() == "2026-03-09T10:00:00+00:00"
    assert site.statuses("/pages/flaky.html") == [500, 200]  # a transient error, tried again after a backoff
    rejects = {path.split("/", 1)[1]: (reason, detail) for path, reason, detail
               in table(data, "rejects").select("path", "reason", "detail").iter_rows()}
    assert rejects["missing.html"][0] == "unreadable" and "HTTP 404" in rejects["missing.html"][1]
    assert rejects["loop.html"][0] == "unreadable" and "redirects" in rejects["loop.html"][1]
    assert rejects["slow.html"][0] == "unavailable" and "within 1 s" in rejects["slow.html"][1]
    assert len(site.statuses("/slow.html")) == 3  # three tries, none waited for longer than the timeout
    assert rejects["big.html"][0] == "too_large" and "17,825,792 bytes" in rejects["big.html"][1]
    assert rejects["trickle.html"][0] == "too_large" and "stopped reading" in rejects["trickle.html"][1]
    assert len(site.statuses("/loop.html")) == 6  # the first request and five redirects

    written = parquet_files(data)
    site.requests.clear()
    again = digest(source=source, data_dir=str(data), fetch_timeout=1)
    assert again.run_id is None and parquet_files(data) == written
    assert (again.skipped, again.fetched, again.already_recorded) == (5, 0, 8)
    pages = [*site.pages, "/big.html", "/trickle.html"]
    assert {path: site.statuses(path) for path in pages} == {path: [304] for path in pages}  # nothing downloaded

    site.pages["/pages/b.html"] = (page("the library hours, extended"), '"b2"')
    third = digest(source=source, data_dir=str(data), fetch_timeout=1)
    assert (third.inputs, third.documents, third.fetched, third.skipped) == (1, 1, 1, 4)
    runs = table(data, "runs").sort("started_at")
    assert runs.select("files", "fetched", "skipped").rows() == [(8, 3, 0), (8, 1, 4)]
    assert runs["fetched_bytes"][1] == len(site.pages["/pages/b.html"][0])


def test_a_sitemap_index_lists_its_sitemaps_pages(site, tmp_path):
    report = digest(source=site.url("/sitemap-index.xml"), data_dir=str(tmp_path / "data"))
    assert (report.files, report.documents) == (2, 2)
    assert sorted(table(tmp_path / "data", "documents")["path"]) == [f"{site.host}/pages/a.html",
                                                                     f"{site.host}/pages/b.html"]


def test_a_single_url_is_one_input_asked_for_conditionally_on_a_rerun(site, tmp_path):
    data, source = tmp_path / "data", site.url("/pages/a.html")
    assert digest(source=source, data_dir=str(data)).documents == 1
    site.requests.clear()
    again = digest(source=source, data_dir=str(data))
    assert again.run_id is None and site.statuses("/pages/a.html") == [304, 304]  # the listing's, the worker's


def test_a_file_of_urls_records_no_secret_of_a_presigned_url(site, tmp_path, caplog):
    signed = site.url("/pages/a.html?X-Amz-Credential=AKIDKEY&X-Amz-Signature=deadbeefsecret&lang=en")
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# today's pages\n{signed}\n{site.url('/pages/b.html')}\nftp://127.0.0.1/c.txt\n")
    data = tmp_path / "data"
    report = digest(source=str(urls), data_dir=str(data))
    assert (report.files, report.documents, report.rejects) == (3, 2, 1)
    uri = table(data, "documents").filter(pl.col("path").str.contains("a.html"))["uri"][0]
    assert uri == site.url("/pages/a.html?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&lang=en")
    ftp = table(data, "rejects").row(0, named=True)
    assert ftp["reason"] == "unreadable" and "ftp://" in ftp["detail"]
    assert_no_secret(data, "deadbeefsecret")
    assert_no_secret(data, "AKIDKEY")
    assert "deadbeefsecret" not in caplog.text


def assert_no_secret(data, secret: str) -> None:
    """No string in any table holds the secret."""
    for name in ("documents", "duplicates", "rejects", "runs", "summaries"):
        files = f"{data}/{name}/*/*.parquet"
        described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{files}', union_by_name = true)").fetchall()
        columns = [row[0] for row in described if row[1] == "VARCHAR"]
        for column in columns:
            hits = duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}', union_by_name = true) "
                              f"WHERE contains(\"{column}\", '{secret}')").fetchall()[0][0]
            assert hits == 0, f"{secret} in {name}.{column}"


def test_urls_with_credentials_or_other_schemes_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="holds a password") as caught:
        digest(source="https://reader:hunter2@feeds.example.com/feed.xml", data_dir=str(tmp_path / "data"))
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="ftp:// scheme is not read"):
        check_source("ftp://example.com/seeds/")
    with pytest.raises(ValueError, match=r"holds a secret \(X-Amz-Signature\)") as caught:
        check_source("https://bucket.example/feed.xml?X-Amz-Signature=abc123&page=2")
    assert "abc123" not in str(caught.value)
    assert not (tmp_path / "data").exists()


def test_redact_keeps_the_location_and_drops_secrets():
    assert redact("https://user:pw@Example.com:8443/a/b.html?sig=abc&page=2&X-Goog-Signature=x#top") == \
        "https://example.com:8443/a/b.html?sig=REDACTED&page=2&X-Goog-Signature=REDACTED"
    assert redact("s3://bucket/seeds/a.txt") == "s3://bucket/seeds/a.txt"


def test_entries_of_feeds_sitemaps_and_url_lists():
    atom = (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            b'<entry><title>one</title><link href="/news/1.html"/></entry>'
            b'<entry><title>two</title><link href="https://other.example/2"/></entry></feed>')
    assert entries(atom, "https://news.example/atom.xml") == (
        ["https://news.example/news/1.html", "https://other.example/2"], [])
    urlset = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc> /a </loc></url></urlset>'
    assert entries(urlset, "https://news.example/sitemap.xml") == (["https://news.example/a"], [])
    assert entries(b"# list\nhttps://a.example/1\n\nhttps://b.example/2\n", "file:///urls.txt") == (
        ["https://a.example/1", "https://b.example/2"], [])
    assert entries(page("a page"), "https://news.example/page")[0] is None
    assert entries(b"Just an article. It mentions https://a.example once.", "https://x.example/a.txt")[0] is None


def test_the_command_reads_a_sitemap_then_answers_nothing_new(site, tmp_path):
    from tests.test_cli import run_cli

    arguments = ("--source", site.url("/sitemap.xml"), "--data", str(tmp_path / "data"), "--fetch-timeout", "5")
    first = run_cli(*arguments, home=tmp_path / "home")
    assert first.returncode == 0, first.stderr
    values = [line for line in first.stdout.splitlines() if "│" in line][-1]  # the header's lines are drawn with ┃
    assert [cell.strip() for cell in values.split("│")[1:4]] == ["2", "2", "0"]  # files, fetched, skipped
    again = run_cli(*arguments, home=tmp_path / "home")
    assert again.returncode == 0 and "nothing new: 2 file(s)" in again.stderr, again.stderr
    assert "Traceback" not in first.stderr + again.stderr
    refused = run_cli("--source", "https://me:hunter2@news.example/feed.xml", home=tmp_path / "home")
    assert refused.returncode == 2 and "holds a password" in refused.stderr and "hunter2" not in refused.stderr


def test_a_listed_url_that_cannot_be_parsed_is_a_reject_of_its_own(tmp_path):
    from tasks.fetch import FetchOptions, fetch_all
    from tasks.sources import list_source
    from tasks.store import recorded_files

    urls = tmp_path / "urls.txt"
    urls.write_text("http://[::1/a.html?token=hunter2\nhttp://127.0.0.1:1/b.html\nhttp://127.0.0.1:1/b.html\n")
    broken, refused = list_source(str(urls), recorded_files(tmp_path / "data"))  # a URL listed twice is one input
    assert broken.uri.startswith("invalid-url:") and "hunter2" not in broken.uri + broken.relative
    outcomes = list(fetch_all([broken, refused], FetchOptions(attempts=1)))
    assert [(outcome.reason, "hunter2" in str(outcome)) for outcome in outcomes] == [
        ("unreadable", False), ("unavailable", False)]
