"""Where seed files come from, and which of them are new: a local folder, file or glob; objects in S3, GCS or Azure
(`s3://bucket/prefix/`, `gs://...`, `az://container/...`, globs included, through fsspec); or HTTP(S): an RSS/Atom
feed or a sitemap, whose entries' pages are the inputs, a text file of URLs (local or remote), or one URL.

Listing runs in the flow's process and downloads only the listing itself (a bucket's listing, a feed, a sitemap, a
URL list); the workers fetch the inputs (tasks/fetch.py). An input already recorded is not fetched again: a local
file by the quick check of path, size and modification time; an object by its URI, ETag, modification time and
size from the listing; an HTTP page by a conditional request with its last recorded ETag and Last-Modified.
"""

import glob
import io
from dataclasses import replace
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urljoin, urlsplit
from xml.etree import ElementTree

import polars as pl

from tasks.fetch import (HTTP_SCHEMES, SCHEMES, SECRET_PARAMETER, FetchOptions, fetch_all, filesystem, object_version,
                         redact, scheme_of)
from tasks.ingest import (CONTAINER_FORMATS, FORMATS, MAX_DOCUMENT_BYTES, InputError, SeedFile, discover,
                         local_versions, readable_name)

SITEMAP_DEPTH = 2  # a sitemap index's sitemaps are read; an index inside those is not followed further


class SourceUnavailable(FileNotFoundError):
    """The source cannot be listed (a missing bucket, a feed that answers 404, a host that does not answer)."""


def check_source(source: str) -> None:
    """A source the job can read, said before any work: an allowed scheme, and no credentials inside the URL (Prefect
    records a flow's parameters as given, so a password there would be in its database and UI)."""
    scheme = scheme_of(source)
    if scheme is None:
        return
    if scheme not in SCHEMES:
        raise ValueError(f"source {source!r}: the {scheme}:// scheme is not read; use a local path or an "
                         f"{', '.join(s + '://' for s in SCHEMES)} URL")
    if urlsplit(source).password is not None:
        raise ValueError(f"source {redact(source)!r} holds a password: give credentials through the environment "
                         f"or the store's own configuration (see the README's Sources section), never in the URL")
    secrets = [name for name, _ in parse_qsl(urlsplit(source).query) if SECRET_PARAMETER.search(name)]
    if secrets:
        raise ValueError(f"source {redact(source)!r} holds a secret ({', '.join(secrets)}): list a presigned URL in "
                         f"a URL list instead, whose lines are not parameters")


def list_source(source: str, recorded: pl.DataFrame, fetch: FetchOptions | None = None,
                storage_options: dict | None = None) -> list[SeedFile]:
    """The seed files a source lists, in a stable order; `recorded` (`tasks.store.recorded_files`) lets a single URL
    already recorded be asked for conditionally; `storage_options` (a credentials block's) go to an object store."""
    check_source(source)
    scheme = scheme_of(source)
    if scheme is None:
        return _local(source)
    if scheme in HTTP_SCHEMES:
        return _listed_urls(source, _http_versions(recorded), fetch or FetchOptions())
    return _objects(source, storage_options)


def _local(source: str) -> list[SeedFile]:
    """A folder, glob or file; a file of nothing but http(s) URLs is a URL list."""
    files = discover(source)
    if len(files) == 1 and Path(source).is_file() and Path(source).stat().st_size <= MAX_DOCUMENT_BYTES:
        urls = url_lines(Path(source).read_bytes())
        if urls:
            return _pages(urls)
    return files


def url_lines(document: bytes) -> list[str] | None:
    """The URLs of a text file that holds one http(s) URL a line (blank lines and # comments aside), else None."""
    try:
        lines = [line.strip() for line in document.decode("utf-8-sig").splitlines()]
    except UnicodeDecodeError:
        return None
    urls = [line for line in lines if line and not line.startswith("#")]
    if urls and all(scheme_of(url) is not None and " " not in url for url in urls) and \
            any(scheme_of(url) in HTTP_SCHEMES for url in urls):
        return urls
    return None


def _pages(urls: list[str]) -> list[SeedFile]:
    """One seed file per URL: its path is host and path (and query, secrets redacted), its source the host."""
    files = []
    for url in urls:
        location = redact(url)
        parts = urlsplit(location)
        relative = readable_name(parts.netloc + (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        files.append(SeedFile(url, relative, parts.hostname or "unknown", uri=location))
    return _distinct(files)


def _distinct(files: list[SeedFile]) -> list[SeedFile]:
    """The first of the files listed under each path (a URL in two sitemaps, or twice with other signatures)."""
    first: dict[str, SeedFile] = {}
    for seed in files:
        first.setdefault(seed.relative, seed)
    return list(first.values())


def _listed_urls(source: str, versions: dict, fetch: FetchOptions, depth: int = 0) -> list[SeedFile]:
    """The inputs an HTTP source lists: a feed's or sitemap's pages, a URL list's URLs, or the one file it is."""
    single = _pages([source])[0]
    etag, modified_at, recorded = versions.get(single.uri, (None, None, 0))
    known = replace(single, etag=etag, modified_at=modified_at, recorded=recorded)
    [outcome] = fetch_all([known], fetch)
    if outcome is None:  # 304: the single file recorded last time, unchanged; its worker asks again, as for any page
        return [known]
    if isinstance(outcome, InputError) or outcome.error:
        raise SourceUnavailable(f"seed source {single.uri}: {getattr(outcome, 'error', None) or outcome}")
    urls, sitemaps = entries(outcome.data, outcome.uri)
    if urls is None:
        return [replace(single, **_version_of(versions, single.uri))]
    pages = _pages(urls)
    for sitemap in sitemaps if depth < SITEMAP_DEPTH else []:
        pages += _listed_urls(sitemap, versions, fetch, depth + 1)
    return [replace(page, **_version_of(versions, page.uri)) for page in _distinct(pages)]


def entries(document: bytes, url: str) -> tuple[list[str] | None, list[str]]:
    """(page URLs, sitemap URLs) listed by a URL list, a sitemap (or sitemap index) or an RSS/Atom feed; page URLs
    are None when the document is none of these, but an input itself."""
    urls = url_lines(document)
    if urls is not None:
        return urls, []
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        root = None
    if root is not None and root.tag.rpartition("}")[2] in ("urlset", "sitemapindex"):
        locations = [urljoin(url, element.text.strip()) for element in root.iter()
                     if element.tag.rpartition("}")[2] == "loc" and element.text and element.text.strip()]
        return (locations, []) if root.tag.endswith("urlset") else ([], locations)
    import feedparser

    feed = feedparser.parse(io.BytesIO(document), response_headers={"content-location": url})  # a stream: never fetched
    if not feed.version:
        return None, []
    return [urljoin(url, entry.link) for entry in feed.entries if entry.get("link")], []


def _http_versions(recorded: pl.DataFrame) -> dict[str, tuple]:
    """{uri: (etag, modified_at, inputs)} of the latest version recorded of each HTTP(S) input."""
    rows = recorded.filter(pl.col("uri").str.contains(r"^https?://"))
    latest = rows.sort("fetched_at").group_by("uri").last()
    return {uri: (etag, modified_at, inputs) for uri, etag, modified_at, inputs
            in latest.select("uri", "etag", "modified_at", "inputs").iter_rows()}


def _version_of(versions: dict, uri: str) -> dict:
    etag, modified_at, recorded = versions.get(uri, (None, None, 0))
    return {"etag": etag, "modified_at": modified_at, "recorded": recorded}


def _objects(source: str, storage_options: dict | None) -> list[SeedFile]:
    """The seed files under an object-store prefix (recursively) or matching a glob, with their versions."""
    scheme = scheme_of(source)
    fs, path = filesystem(source, storage_options)
    fs.invalidate_cache()  # fsspec keeps listings per process: a run must see the store as it is now
    try:
        if glob.has_magic(path):
            root = path[:min(path.find(c) for c in "*?[" if c in path)].rpartition("/")[0]
            found = fs.glob(path, detail=True)
        elif fs.isfile(path):
            root, found = path.rpartition("/")[0], {path: fs.info(path)}
        else:
            root, found = path.rstrip("/"), fs.find(path, detail=True)
    except FileNotFoundError as error:
        raise SourceUnavailable(f"seed source {source!r}: not found ({error})") from None
    except OSError as error:
        raise SourceUnavailable(f"seed source {source!r} cannot be listed: {type(error).__name__} {error}") from None
    files = []
    for name, info in sorted(found.items()):
        relative = PurePosixPath(name).relative_to(root) if root else PurePosixPath(name)
        if info.get("type") != "file" or relative.suffix.lower() not in FORMATS:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        folder = relative.parts[0] if len(relative.parts) > 1 else (PurePosixPath(root).name or "root")
        etag, modified_at = object_version(info)
        files.append(SeedFile(f"{scheme}://{name}", readable_name(relative.as_posix()), readable_name(folder),
                              uri=f"{scheme}://{name}", etag=etag, modified_at=modified_at,
                              size_bytes=info.get("size")))
    return files


def new_files(files: list[SeedFile], recorded: pl.DataFrame) -> tuple[list[SeedFile], int, int]:
    """(files to fetch, files skipped, inputs recorded from them): a listed file whose version matches a recorded one
    is not fetched again. A local file by path, size and modification time (make's and rsync's quick check; JSON
    containers by path and time), an object by URI, ETag, modification time and size; an HTTP page is always handed
    on, with its recorded version for a conditional request."""
    if recorded.height == 0:
        return files, 0, 0
    local = recorded.filter(pl.col("uri").str.starts_with("file:"))
    stored = recorded.filter(~pl.col("uri").str.contains(r"^(file|https?):"))
    objects = [(index, seed) for index, seed in enumerate(files)
               if seed.remote and scheme_of(seed.path) not in HTTP_SCHEMES]
    listed = pl.DataFrame({  # as columns, not a dict per object
        "index": [index for index, _ in objects], "uri": [seed.uri for _, seed in objects],
        "etag": [seed.etag for _, seed in objects], "modified_at": [seed.modified_at for _, seed in objects],
        "size_bytes": [None if FORMATS.get(PurePosixPath(seed.uri).suffix.lower()) in CONTAINER_FORMATS
                       else seed.size_bytes for _, seed in objects],
    }, schema={"index": pl.Int64, "uri": pl.String, "etag": pl.String, "modified_at": pl.Datetime("us", "UTC"),
               "size_bytes": pl.Int64})
    local_keys, object_keys = ["path", "modified_at", "size_bytes"], ["uri", "etag", "modified_at", "size_bytes"]
    matched = pl.concat([
        local_versions(files).join(local.group_by(local_keys).agg(pl.col("inputs").sum()), on=local_keys,
                                   nulls_equal=True).select("index", "inputs"),
        listed.join(stored.group_by(object_keys).agg(pl.col("inputs").sum()), on=object_keys,
                    nulls_equal=True).select("index", "inputs"),
    ])
    unchanged = set(matched["index"].to_list())
    return ([seed for index, seed in enumerate(files) if index not in unchanged], len(unchanged),
            int(matched["inputs"].sum()))
