"""Ingest: find seed files, read and decode them into one row per input, or a reject row saying why not.

An input is a whole .txt/.md/.html file, or one record of a .json/.jsonl file, local or remote (fetched by
tasks/fetch.py, listed by tasks/sources.py). Its input_id hashes where it came from and its bytes, so a re-run
can tell what is already recorded in data/.
"""

import errno
import glob
import hashlib
import json
import os
import stat
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import charset_normalizer
import polars as pl

FORMATS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
           ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
CONTAINER_FORMATS = ("json", "jsonl")  # one input per record, not per file
CONTENT_TYPES = {"text/plain": "txt", "text/markdown": "md", "text/html": "html", "application/xhtml+xml": "html",
                 "application/json": "json", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
                 "application/x-jsonlines": "jsonl"}  # the format of a remote input whose name has no extension
TEXT_FIELDS = ("text", "content", "body", "article")
JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
              type(None): "null"}
TITLE_FIELDS = ("title", "headline")
BOMS = [  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
]
# A Western single-byte reading is preferred when it is nearly as clean as charset-normalizer's best guess,
# which on short texts often names a Baltic or Central European code page for plain cp1252.
WESTERN_CODEC = "cp1252"
WESTERN_CHAOS_TOLERANCE = 0.1
MAX_CONTROL_SHARE = 0.01
# Unicode's control characters (category Cc: U+0000-001F and U+007F-009F, a set the standard keeps fixed) but
# tab, line feed, form feed and carriage return, which text files hold.
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
MAX_STRAY_BYTES = 8  # invalid bytes a UTF-8 file may have (or 0.1 % of it) and still be read as UTF-8
# Size bounds: a news article is a few kB; a larger input is a reject, never an out-of-memory.
MAX_DOCUMENT_BYTES = 16 << 20  # a .txt/.md/.html file, or one record of a JSON file
MAX_CONTAINER_BYTES = 512 << 20  # a .json or .jsonl file, read whole

RECORD_COLUMNS = {
    "input_id": pl.String, "source": pl.String, "path": pl.String, "record": pl.Int64, "uri": pl.String,
    "format": pl.String, "encoding": pl.String, "size_bytes": pl.Int64, "content_sha256": pl.String,
    "modified_at": pl.Datetime("us", "UTC"), "etag": pl.String, "fetched_at": pl.Datetime("us", "UTC"),
}
INPUTS_SCHEMA = {**RECORD_COLUMNS, "raw": pl.String, "title_hint": pl.String}
REJECTS_SCHEMA = {**RECORD_COLUMNS, "stage": pl.String, "reason": pl.String, "detail": pl.String, "text": pl.String}


# File-system errors that say this file cannot be read. Any other (EIO, ESTALE, a network mount timing out)
# is taken as transient: the ingest task fails and Prefect retries it with backoff.
PERMANENT_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG,
                    errno.ELOOP}


class TransientSourceError(OSError):
    """A read that may succeed if tried again."""


class InputError(Exception):
    """A reason an input cannot become a document: `reason` is a short code, the message says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class SeedFile:
    path: str  # as given or found, for reading: a local path, or the URL of a remote input
    relative: str  # relative to the source root: the stable name recorded in data/
    source: str  # the site or folder it belongs to, for boilerplate statistics
    uri: str | None = None  # a remote input's location, secrets redacted (a local file's is found when it is read)
    # What is known of a remote input's version before it is fetched: an object's from the listing; an HTTP page's
    # as last recorded, sent as If-None-Match / If-Modified-Since, with the inputs recorded from it, which count as
    # already recorded when the server answers 304 Not Modified.
    etag: str | None = None
    modified_at: datetime | None = None
    size_bytes: int | None = None
    recorded: int = 0

    @property
    def remote(self) -> bool:
        return self.uri is not None


def discover(source: str) -> list[SeedFile]:
    """Seed files under a folder (recursively) or matching a glob, in a stable order (path by path, as pathlib
    orders paths). Works on strings and directory entries: pathlib objects cost ten times as much at 100,000 files."""
    if glob.has_magic(source):
        root = str(Path(source.split("*")[0].split("?")[0].split("[")[0]))
        root = root if os.path.isdir(root) else os.path.dirname(root) or "."
        matches = glob.glob(source, recursive=True)
        if not matches:
            raise FileNotFoundError(f"seed source {source!r}: the pattern matches no file")
        candidates = [path for path in matches if os.path.isfile(path) or os.path.islink(path)]
        relatives = [os.path.relpath(path, root) for path in candidates]
        unlisted: set[str] = set()
    elif not source.strip():
        raise FileNotFoundError("the seed source is empty: give a folder, a file or a glob")
    elif os.path.isdir(source):
        root = str(Path(source))
        candidates, unlisted = _walk(root)
        if root in unlisted:
            raise FileNotFoundError(f"seed source {source!r}: the folder cannot be listed (permission denied)")
        prefix = len(os.path.join(root, ""))
        relatives = [path[prefix:] for path in candidates]
    elif os.path.isfile(source):
        root = os.path.dirname(str(Path(source))) or "."
        candidates, relatives, unlisted = [str(Path(source))], [os.path.basename(source)], set()
    else:
        raise FileNotFoundError(f"seed source {source!r} is neither a folder, a file nor a glob that matches")
    root_name = Path(root).resolve().name or "root"
    files = []
    for relative, path in sorted(zip(relatives, candidates), key=lambda pair: pair[0].split(os.sep)):
        parts = relative.split(os.sep)
        if any(part.startswith(".") for part in parts):
            continue
        if path not in unlisted and os.path.splitext(path)[1].lower() not in FORMATS:
            continue  # a folder that cannot be listed is an input to reject, whatever its name
        folder = parts[0] if len(parts) > 1 else root_name
        files.append(SeedFile(path, readable_name("/".join(parts)), readable_name(folder)))
    return files


def _walk(root: str) -> tuple[list[str], set[str]]:
    """(every file and link under root outside hidden folders, the folders that could not be listed): the walk
    goes on past a folder it may not read, and the folder becomes an input of its own, to be rejected, rather
    than vanishing. Links to folders are listed, not followed."""
    found, unlisted, folders = [], set(), [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_symlink() or entry.is_file():  # a broken or looping link is an input to reject
                        found.append(entry.path)
        except OSError:
            unlisted.add(folder)
            if folder != root:
                found.append(folder)
    return found, unlisted


VERSION_SCHEMA = {"index": pl.Int64, "path": pl.String, "modified_at": pl.Datetime("us", "UTC"), "size_bytes": pl.Int64}


def local_versions(files: list[SeedFile]) -> pl.DataFrame:
    """(index, path, modified_at, size_bytes) of each local seed file, as its rows were recorded, for the quick check
    of `tasks.sources.new_files` (JSON containers by path and time: their rows have their records' sizes). Built
    as columns, not a dict per file."""
    indexes, paths, modified, sizes = [], [], [], []
    for index, seed in enumerate(files):
        if seed.remote:
            continue
        try:
            status = os.stat(seed.path)
        except OSError:
            continue
        container = FORMATS.get(os.path.splitext(seed.path)[1].lower()) in CONTAINER_FORMATS
        indexes.append(index)
        paths.append(seed.relative)
        columns = _stat_columns(status)  # as the rows of the file were recorded, so that they compare equal
        modified.append(columns["modified_at"])
        sizes.append(None if container else columns["size_bytes"])
    return pl.DataFrame({"index": indexes, "path": paths, "modified_at": modified, "size_bytes": sizes},
                        schema=VERSION_SCHEMA)


def readable_name(name: str) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 (a latin-1 name) become \\xNN escapes."""
    return name if name.isascii() else os.fsencode(name).decode("utf-8", "backslashreplace")


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name of a file's bytes: BOMs, UTF-8, UTF-16 without BOM, then cp1252 or the best guess."""
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise InputError("empty", "the input holds no text")
    for bom, codec in BOMS:
        if data.startswith(bom):
            return _checked(data[len(bom):], codec, codec.replace("-sig", "-bom"))
    if b"\x00" in data:
        codec = _utf16_without_bom(data)
        if codec is None:
            raise InputError("binary", f"{data.count(0)} of its {len(data)} bytes are NUL (zero): not a text file")
        return _checked(data, codec, codec)
    try:
        return _checked(data, "utf-8", "utf-8")
    except InputError as error:
        if error.reason != "undecodable":
            raise
    repaired = _utf8_with_stray_bytes(data)
    if repaired is not None:
        return repaired
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise InputError("undecodable", "no text encoding (UTF-8, UTF-16, cp1252, latin-1, ...) reads it cleanly")
    western = charset_normalizer.from_bytes(data, cp_isolation=[WESTERN_CODEC]).best()
    if western is not None and western.chaos <= best.chaos + WESTERN_CHAOS_TOLERANCE:
        return _checked(data, WESTERN_CODEC, WESTERN_CODEC)
    return _checked(data, best.encoding, best.encoding)


def _utf8_with_stray_bytes(data: bytes) -> tuple[str, str] | None:
    """UTF-8 text with a few invalid bytes (a truncated last character, a stray 0xFF), each replaced by U+FFFD:
    one bad byte costs one character, not the whole file read in a wrong code page. Taken when the file's other
    non-ASCII characters are valid UTF-8 (at least four for each bad byte) or the only fault is a cut-off end."""
    text = data.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    valid = sum(1 for ch in text if ord(ch) > 127) - text.count("\ufffd")
    truncated = False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        truncated = error.reason == "unexpected end of data" and error.end == len(data)
    if replaced > max(MAX_STRAY_BYTES, len(data) // 1000) or not (truncated or valid >= 4 * replaced):
        return None
    text, _ = _checked(text.encode("utf-8"), "utf-8", "utf-8")
    return text, f"utf-8 ({replaced} invalid byte{'s' if replaced > 1 else ''} replaced)"


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 LE/BE guessed from NULs in odd or even positions, as ASCII-heavy UTF-16 text has."""
    sample = data[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) / 2
    if odd > 0.3 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.3 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _checked(data: bytes, codec: str, name: str) -> tuple[str, str]:
    try:
        text = data.decode(codec)
    except (UnicodeDecodeError, LookupError) as error:
        raise InputError("undecodable", f"not valid {name}: {error}") from None
    controls = len(CONTROL_CHARACTER.findall(text))
    if controls > MAX_CONTROL_SHARE * len(text):
        raise InputError("binary", f"{controls} control characters in {len(text)} decoded as {name}: not a text file")
    if not text.strip():
        raise InputError("empty", "the input holds only white space")
    return text, name


def input_id(relative: str, record: int | None, content_sha256: str) -> str:
    key = f"{relative}\x00{'' if record is None else record}\x00{content_sha256}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def read_inputs(files: list[SeedFile], fetched: Iterable = ()) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Inputs of a batch of seed files, as (inputs, rejects, counts): every file yields rows in one or the other,
    except a remote one the server says is unchanged since it was recorded. The remote files are not read here:
    `fetched` yields their outcomes in their order (`tasks.fetch.fetch_all`). `counts` says how many files were
    fetched (read), with how many bytes, and how many were unchanged (`skipped`, holding `skipped_inputs`)."""
    fetched = iter(fetched)
    inputs, rejects = [], []
    counts = {"fetched": 0, "fetched_bytes": 0, "skipped": 0, "skipped_inputs": 0}
    for seed in files:
        if seed.remote:
            outcome = next(fetched)
            if outcome is None:  # 304 Not Modified
                counts["skipped"] += 1
                counts["skipped_inputs"] += seed.recorded
                continue
            base = _remote_base_row(seed, outcome)
            data = outcome if isinstance(outcome, InputError) else outcome.error or outcome.data
        else:
            base, data = _read_file(seed)
        if isinstance(data, InputError):
            rows = [(base, data)]
        else:
            counts["fetched"] += 1
            counts["fetched_bytes"] += len(data)
            rows = _rows(seed, base, data)
        for row, error in rows:
            if error is None:
                inputs.append(row)
            else:
                rejects.append(reject_row(row, "ingest", error, row.get("raw")))
    return pl.DataFrame(inputs, schema=INPUTS_SCHEMA), pl.DataFrame(rejects, schema=REJECTS_SCHEMA), counts


def reject_row(row: dict, stage: str, error: InputError, text: str | None) -> dict:
    """A rejects-table row: the input's own columns, where it stopped, why, and whatever text it had."""
    return {**{key: row[key] for key in RECORD_COLUMNS}, "stage": stage, "reason": error.reason,
            "detail": str(error), "text": text}


def _base_row(seed: SeedFile) -> dict:
    """The columns every row of a seed file has, before its bytes are read."""
    if seed.remote:
        uri, fmt = seed.uri, remote_format(seed.uri)
    else:
        path = Path(seed.path)
        try:
            uri = path.resolve().as_uri()
        except (OSError, RuntimeError):  # a symlink loop
            uri = path.absolute().as_uri()
        fmt = "folder" if path.is_dir() else FORMATS[path.suffix.lower()]
    return {"source": seed.source, "path": seed.relative, "record": None, "uri": uri, "format": fmt,
            "encoding": None, "fetched_at": datetime.now(timezone.utc), "raw": None, "title_hint": None,
            "modified_at": None, "etag": None, "size_bytes": 0, "content_sha256": "",
            "input_id": input_id(seed.relative, None, "")}


def remote_format(uri: str, content_type: str | None = None) -> str:
    """A remote input's format: its name's extension, else its Content-Type; a page is HTML unless said otherwise."""
    suffix = PurePosixPath(urlsplit(uri).path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    media = (content_type or "").split(";")[0].strip().lower()
    return CONTENT_TYPES.get(media, "html")


def _remote_base_row(seed: SeedFile, outcome) -> dict:
    """The base row of a remote input as fetched (`tasks.fetch.Fetched`), or as listed when it could not be."""
    row = _base_row(seed)
    if not isinstance(outcome, InputError):
        row.update(uri=outcome.uri, format=remote_format(outcome.uri, outcome.content_type),
                   modified_at=outcome.modified_at, etag=outcome.etag,
                   size_bytes=len(outcome.data) if outcome.size is None else outcome.size)
    return row


def _unreadable(path: Path, error: OSError) -> str:
    if path.is_symlink() and error.errno == errno.ENOENT:
        return f"a symbolic link to {os.readlink(path)!r}, which does not exist"
    if error.errno == errno.ELOOP:
        return "a symbolic link that leads back to itself (a loop)"
    if path.is_dir():
        return f"a folder that cannot be listed ({error.strerror or error}): the files in it were not read"
    return f"cannot read the file: {error.strerror or error}"


def _stat_columns(status: os.stat_result) -> dict:
    return {"size_bytes": status.st_size, "modified_at": datetime.fromtimestamp(status.st_mtime, timezone.utc)}


def file_reject(seed: SeedFile, error: InputError) -> dict:
    """A rejects row for a whole seed file that could not be read or processed, with its size if known."""
    row = _base_row(seed)
    if not seed.remote:
        try:
            row.update(_stat_columns(Path(seed.path).stat()))
        except OSError:
            pass
    return reject_row(row, "ingest", error, None)


def size_limit(fmt: str) -> int:
    return MAX_CONTAINER_BYTES if fmt in CONTAINER_FORMATS else MAX_DOCUMENT_BYTES


def too_large(size: int, fmt: str, what: str = "the file") -> InputError:
    return InputError("too_large", f"{what} has {size:,} bytes; seed-digest reads {fmt} files of up to "
                                   f"{size_limit(fmt):,} bytes")


def _read_file(seed: SeedFile) -> tuple[dict, bytes | InputError]:
    """A local seed file's base row and bytes, or the reason they cannot be read."""
    path = Path(seed.path)
    base = _base_row(seed)
    try:
        status = path.stat()
        base.update(_stat_columns(status))
        if status.st_size > size_limit(base["format"]):
            return base, too_large(status.st_size, base["format"])
        if stat.S_ISDIR(status.st_mode):  # a folder is an input only when the walk could not list it
            os.listdir(path)
        return base, path.read_bytes()
    except OSError as error:
        if error.errno not in PERMANENT_ERRNOS:
            raise TransientSourceError(f"reading {seed.path} failed: {error}") from error
        return base, InputError("unreadable", _unreadable(path, error))


def _rows(seed: SeedFile, base: dict, data: bytes):
    """(row, error or None) of each input in a seed file's bytes: the file, or each record of a JSON container."""
    if base["format"] in CONTAINER_FORMATS:
        yield from _read_records(seed, base, data, base["format"])
        return
    yield _decoded_row(seed, base, data, None)


def _decoded_row(seed: SeedFile, base: dict, data: bytes, record: int | None, parse=None):
    digest = hashlib.sha256(data).hexdigest()
    row = {**base, "record": record, "size_bytes": len(data), "content_sha256": digest,
           "input_id": input_id(seed.relative, record, digest)}
    try:
        if len(data) > MAX_DOCUMENT_BYTES:
            raise InputError("too_large", f"the record has {len(data):,} bytes; seed-digest reads records of up to "
                                          f"{MAX_DOCUMENT_BYTES:,} bytes")
        text, row["encoding"] = decode(data)
        row["raw"] = text
        if parse is not None:
            row.update(parse(text))
    except InputError as error:
        return row, error
    return row, None


def _read_records(seed: SeedFile, base: dict, data: bytes, fmt: str):
    """One input per JSON Lines line, or per object of a JSON array (or the single JSON object)."""
    if fmt == "jsonl":
        lines, codec = [(line, None) for line in data.splitlines()], None
        if b"\x00" in data[:4096]:  # UTF-16 or UTF-32: decode the file, then split it into lines
            try:
                text, codec = decode(data)
            except InputError as error:
                yield _whole_file(base, data), error
                return
            lines = [(line.encode("utf-8"), codec) for line in text.splitlines()]
        records = 0
        for index, (line, codec) in enumerate(lines):
            if line.strip():
                records += 1
                row, error = _decoded_row(seed, base, line, index, _parse_record)
                row["encoding"] = codec or row["encoding"]
                yield row, error
        if records == 0:
            yield _whole_file(base, data), InputError("empty", "the JSON Lines file holds no record")
        return
    row, error = _decoded_row(seed, base, data, None)
    if error is None:
        try:
            parsed = _parse_json(row["raw"])
            if not isinstance(parsed, list):
                row.update(_record_fields(parsed))
        except InputError as failure:
            error = failure
    if error is not None or not isinstance(parsed, list):
        yield row, error
        return
    if not parsed:
        yield row, InputError("empty", "the JSON array holds no record")
        return
    for index, item in enumerate(parsed):
        item_row, item_error = _decoded_row(seed, base, json.dumps(item, ensure_ascii=False).encode(), index)
        item_row["encoding"] = row["encoding"]
        if item_error is None:
            try:
                item_row.update(_record_fields(item))
            except InputError as failure:
                item_error = failure
        yield item_row, item_error


def _whole_file(base: dict, data: bytes) -> dict:
    """The row of a container file as one input (for a reject that concerns the whole file)."""
    digest = hashlib.sha256(data).hexdigest()
    return {**base, "size_bytes": len(data), "content_sha256": digest, "input_id": input_id(base["path"], None, digest)}


def _parse_json(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise InputError("invalid_json", f"not valid JSON: {error}") from None


def _parse_record(raw: str) -> dict:
    return _record_fields(_parse_json(raw))


def _record_fields(item) -> dict:
    """Text, title and source of one JSON record; a record without text is an input error."""
    if not isinstance(item, dict):
        raise InputError("invalid_json", f"a record must be a JSON object, not {JSON_TYPES.get(type(item), 'a value')}")
    text = next((item[key] for key in TEXT_FIELDS if isinstance(item.get(key), str)), None)
    if text is None or not text.strip():
        raise InputError("no_text", f"no non-empty text field ({', '.join(TEXT_FIELDS)}) in the record")
    title = next((item[key] for key in TITLE_FIELDS if isinstance(item.get(key), str)), None)
    fields = {"raw": text, "title_hint": title}
    if isinstance(item.get("source"), str) and item["source"].strip():
        fields["source"] = item["source"].strip()
    return fields

