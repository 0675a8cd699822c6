"""Fetch remote seed files on the workers: HTTP(S) pages, and objects in S3, GCS or Azure through fsspec.

Each fetch is bounded: timeouts, a size cap (a body is streamed and dropped once it passes the cap, never held
whole; a declared size over the cap is not downloaded at all), at most `max_redirects` redirects, and only the
`SCHEMES` below. It is polite: a worker fetches at most `concurrency` inputs at once, at most
`per_host` of them from one host, and starts requests to one host at least `host_interval` seconds apart.
Transient failures (timeouts, lost connections, HTTP 408, 425, 429 and 5xx) are tried again with exponential
backoff; a permanent failure (HTTP 4xx, a redirect loop, a scheme not allowed, a missing object), or a transient
one that outlasts `attempts` tries, is the input's reject, its HTTP status in the detail. An HTTP page recorded
before is asked for with If-None-Match / If-Modified-Since, and a 304 answer downloads nothing.
"""

import hashlib
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tasks.ingest import InputError, SeedFile, remote_format, size_limit, too_large

HTTP_SCHEMES = ("http", "https")
OBJECT_STORES = {"s3": "s3fs", "gs": "gcsfs", "az": "adlfs"}  # scheme: the fsspec package that reads it
SCHEMES = (*HTTP_SCHEMES, *OBJECT_STORES)
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "seed-digest"
# Query parameters whose values are secrets (presigned S3/GCS URLs, Azure SAS, API keys): never recorded or logged.
SECRET_PARAMETER = re.compile(r"sig|token|key|secret|pass|credential|auth|session", re.IGNORECASE)


def scheme_of(source: str) -> str | None:
    """The URL scheme of a source (`s3`, `https`, ...); None for a local path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", source)
    return match.group(1).lower() if match else None


def redact(url: str) -> str:
    """The URL without what must not be recorded: user name and password, secret query values, the fragment. A URL
    that cannot be parsed (a bad IPv6 address or port) is named by a hash of it."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return f"invalid-url:{hashlib.sha256(url.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = urlencode([(name, "REDACTED" if SECRET_PARAMETER.search(name) else value)
                       for name, value in parse_qsl(parts.query, keep_blank_values=True)], safe="/:,")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, query, ""))


def filesystem(url: str, storage_options: dict | None = None):
    """(fsspec file system, path) of an object-store URL; the store's package is named if it is not installed.
    Without `storage_options` (a credentials block's), the store's client finds its credentials as it does for any
    program: the environment, its configuration files, the machine's role or identity."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError:
        package = OBJECT_STORES[scheme_of(url)]
        raise ImportError(f"{scheme_of(url)}:// sources need the {package} package: pip install {package}") from None


def object_version(info: dict) -> tuple[str | None, datetime | None]:
    """(ETag, modification time) of an object as its fsspec listing or info describes it, whichever the store."""
    etag = next((str(info[key]) for key in ("ETag", "etag", "md5Hash") if info.get(key)), None)
    modified = next((info[key] for key in ("LastModified", "last_modified", "updated", "mtime") if info.get(key)),
                    None)
    if isinstance(modified, str):
        modified = datetime.fromisoformat(modified.replace("Z", "+00:00"))
    elif isinstance(modified, (int, float)):
        modified = datetime.fromtimestamp(modified, timezone.utc)
    if isinstance(modified, datetime):
        modified = (modified if modified.tzinfo else modified.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return etag, modified


@dataclass(frozen=True)
class FetchOptions:
    timeout: float = 30.0  # seconds to connect, and to wait for each piece of a response
    deadline: float = 300.0  # seconds one try may take in all (a server that trickles bytes)
    attempts: int = 3  # tries of an input whose failures are transient
    backoff: float = 1.0  # seconds before the second try, doubled before each next one
    concurrency: int = 8  # inputs fetched at once by one worker
    per_host: int = 2  # of which at most this many from one host
    host_interval: float = 0.1  # seconds between the starts of two requests to one host
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    """A remote input's bytes and the version they are: what is recorded to know it again. An input refused after
    its server answered (too large) has no bytes but the `error`, and its version, so that a rerun asks for it
    conditionally instead of downloading it again."""

    data: bytes
    uri: str  # where the bytes came from (after redirects), secrets redacted
    etag: str | None
    modified_at: datetime | None
    content_type: str | None = None
    error: InputError | None = None
    size: int | None = None  # of a refused input, as its server or store said it: its version includes it


class Transient(Exception):
    """A failure that may pass: the fetch is tried again."""


class HostLimits:
    """At most `per_host` requests at once to a host, started at least `host_interval` seconds apart."""

    def __init__(self, options: FetchOptions):
        self.options = options
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str):
        with self._lock:
            slots = self._slots.setdefault(host, threading.Semaphore(self.options.per_host))
        with slots:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + self.options.host_interval
            time.sleep(start - now)
            yield


def fetch_all(seeds: list[SeedFile], options: FetchOptions, storage_options: dict | None = None):
    """For each remote seed file, in order: `Fetched`, None when an HTTP server says it has not changed since it was
    recorded (304), or the InputError that makes it a reject. `storage_options` go to the object stores' fsspec.
    A generator that holds at most twice `concurrency` bodies: the caller takes each before the next is fetched."""
    import httpx

    limits = HostLimits(options)
    with httpx.Client(timeout=options.timeout, follow_redirects=True, max_redirects=options.max_redirects,
                      headers={"User-Agent": USER_AGENT}) as client, \
            ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        pending = deque()
        for seed in seeds:
            pending.append(pool.submit(_with_retries, seed, client, limits, options, storage_options))
            if len(pending) >= 2 * options.concurrency:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _with_retries(seed: SeedFile, client, limits: HostLimits, options: FetchOptions, storage_options: dict | None):
    try:
        scheme, host = urlsplit(seed.path).scheme.lower(), urlsplit(seed.path).hostname or ""
    except ValueError as error:
        return InputError("unreadable", f"not a URL that can be fetched ({error})")
    if scheme not in SCHEMES:
        return InputError("unreadable", f"the {scheme or 'schemeless'}:// URL is not fetched: seed-digest fetches "
                                        f"{', '.join(SCHEMES)} URLs only")
    fetch = _http if scheme in HTTP_SCHEMES else partial(_object, storage_options=storage_options)
    failure = None
    for attempt in range(options.attempts):
        if attempt:
            time.sleep(options.backoff * 2 ** (attempt - 1))
        try:
            with limits.slot(host):
                return fetch(seed, client, options)
        except InputError as error:
            return error
        except Transient as error:
            failure = error
    return InputError("unavailable", f"{failure}, {options.attempts} tries; the next run tries again")


def _http(seed: SeedFile, client, options: FetchOptions):
    import httpx

    headers = {}
    if seed.etag:
        headers["If-None-Match"] = seed.etag
    if seed.modified_at:
        headers["If-Modified-Since"] = format_datetime(seed.modified_at.astimezone(timezone.utc), usegmt=True)
    began = time.monotonic()
    try:
        with client.stream("GET", seed.path, headers=headers) as response:
            where = redact(str(response.url))
            status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
            if response.status_code == 304 and headers:
                return None
            if response.status_code in TRANSIENT_STATUS:
                raise Transient(f"{status} from {where}")
            if response.status_code >= 300:
                raise InputError("unreadable", f"{status} from {where}")
            content_type = response.headers.get("content-type")
            fmt = remote_format(where, content_type)
            version = (where, response.headers.get("etag"), _http_date(response.headers.get("last-modified")),
                       content_type)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > size_limit(fmt):
                return Fetched(b"", *version, error=too_large(int(declared), fmt, f"the response of {where}"),
                               size=int(declared))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > size_limit(fmt):  # no Content-Length, or a wrong one: stop reading here
                    return Fetched(b"", *version, error=InputError(
                        "too_large", f"the response of {where} passed {size_limit(fmt):,} bytes, where seed-digest "
                                     f"stopped reading it: it reads {fmt} inputs of up to {size_limit(fmt):,} bytes"))
                if time.monotonic() - began > options.deadline:
                    raise Transient(f"{where} still sending after {options.deadline:g} s")
            return Fetched(bytes(body), *version)
    except (httpx.InvalidURL, UnicodeError) as error:
        raise InputError("unreadable", f"not a URL that can be fetched: {type(error).__name__}") from None
    except httpx.TooManyRedirects:
        raise InputError("unreadable", f"more than {options.max_redirects} redirects from {redact(seed.path)} "
                                       "(a redirect loop?)") from None
    except httpx.UnsupportedProtocol as error:
        raise InputError("unreadable", f"{redact(seed.path)} redirects to a scheme that is not fetched "
                                       f"({type(error).__name__})") from None
    except httpx.TimeoutException:
        raise Transient(f"no answer from {redact(seed.path)} within {options.timeout:g} s") from None
    except httpx.TransportError as error:
        raise Transient(f"{type(error).__name__} fetching {redact(seed.path)}") from None


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _object(seed: SeedFile, client, options: FetchOptions, storage_options: dict | None) -> Fetched:
    """An object's bytes through fsspec (s3fs, gcsfs, adlfs)."""
    fs, path = filesystem(seed.path, storage_options)
    fmt = remote_format(seed.uri)
    try:
        fs.invalidate_cache(path)  # fsspec caches listings per process: the object may have changed since
        info = fs.info(path)
        version = (seed.uri, *object_version(info))
        size = info.get("size") or 0
        if size > size_limit(fmt):
            return Fetched(b"", *version, error=too_large(size, fmt, f"the object {seed.uri}"), size=size)
        data = fs.cat_file(path, start=0, end=size_limit(fmt) + 1)  # one ranged GET, bounded by the cap
    except (FileNotFoundError, PermissionError) as error:
        raise InputError("unreadable", f"cannot read the object {seed.uri}: {type(error).__name__} {error}") from None
    except Exception as error:  # noqa: BLE001 - a store's client raises its own types; all are taken as passing
        raise Transient(f"{type(error).__name__} reading {seed.uri}: {error}") from None
    if len(data) > size_limit(fmt):  # it grew since its size was read
        return Fetched(b"", *version, error=too_large(len(data), fmt, f"the object {seed.uri}"), size=len(data))
    return Fetched(data, *version)
