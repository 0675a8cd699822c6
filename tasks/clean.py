"""Clean: turn decoded inputs into body text, a title and the record of what was stripped.

Two passes over batches. `normalize_inputs` (tasks/normalize.py) repairs Unicode, extracts HTML/Markdown main
text and splits lines; the flow then picks, per source, the short lines that recur across many articles
(`learn_boilerplate`); `clean_documents` strips them, the header block above the headline and trailers such as
a "Source" glued to the last sentence, and measures what is left.
"""

import hashlib
import operator
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from tasks.ingest import REJECTS_SCHEMA, RECORD_COLUMNS, InputError, reject_row
from tasks.language import WORD, detect_language, sentence_spans, tokens, word_count

# A line ending like a sentence (terminal punctuation, maybe inside quotes or brackets) is body text.
SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’»)\]]*$")
# Text after the last sentence end that is a few words without punctuation: "… militia groups. Source"
GLUED_TRAILER = re.compile(r"^(.*(?<![\s.][A-Z])[.!?…][\"'”’»)\]]*)\s+([^\W\d_][\w'’&\- ]{0,40})$")
MAX_TRAILER_WORDS = 3
# Scrapers' trailers glued to a last line that has no full stop to tell where the text ends: "… out now Source".
KNOWN_TRAILER = re.compile(r"^(.*\S)\s+(Source|Sources|Advertisement|Read more|Share this article|Related)$")
MAX_HEADLINE_WORDS = 20
MIN_HEADLINE_WORDS = 4  # fewer is a site name or a section ("Rawabet Center", "World news")
MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december"
          "|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec")
DAY_MONTH_YEAR = rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{MONTHS})\.?,?\s+\d{{4}}"
MONTH_DAY_YEAR = rf"(?:{MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
# Header lines that are never the headline: a date line ("Published Monday 9 March 2026", "Updated 2026-03-09")
# and a byline ("By Amira Haddad | 5 May 2026").
DATE_LINE_START = re.compile(r"^(?:published|updated|posted|last updated)\b", re.I)
DATE = re.compile(rf"\b(?:{DAY_MONTH_YEAR}|{MONTH_DAY_YEAR}|\d{{4}}-\d{{2}}-\d{{2}})\b", re.I)
DATE_WORDS = re.compile(r"\b(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|\d{1,2}[:.]\d{2}|gmt|utc|bst|cet|et|am|pm)\b",
                        re.I)
BYLINE = re.compile(r"^(?:by|words by|reporting by|written by)\s+\S", re.I)
# A question or exclamation is a headline when it opens the text on a short line of its own.
HEADLINE_END = re.compile(r"[?!][\"'”’»)\]]*$")
MINHASH_CHUNK = 4096  # shingles hashed at a time: the minimum over chunks is the minimum over all
MAX_HASH32 = (1 << 32) - 1
SHA1_WORDS = 5  # a SHA-1 digest's 20 bytes as 32-bit words
MAX_BOILERPLATE_WORDS = 15
BODY_LINE_WORDS = 25
NORMALIZED_SCHEMA = {**RECORD_COLUMNS, "title_hint": pl.String, "lines": pl.List(pl.String)}
DOCUMENTS_SCHEMA = {
    **RECORD_COLUMNS, "title": pl.String, "text": pl.String, "language": pl.String, "word_count": pl.Int32,
    "sentence_count": pl.Int32, "boilerplate": pl.List(pl.String), "text_hash": pl.String,
    "minhash": pl.List(pl.UInt32),
}


@dataclass(frozen=True)
class CleanOptions:
    min_sentences: int = 2
    min_boilerplate_articles: int = 3
    min_boilerplate_share: float = 0.1
    num_perm: int = 128
    shingle_words: int = 3
    minhash_seed: int = 1


def line_key(line: str) -> str:
    """What makes two lines the same line for boilerplate counting: case and punctuation ignored."""
    return " ".join(tokens(line))


ARTICLE_LINES_SCHEMA = {"input_id": pl.String, "source": pl.String, "article": pl.UInt64, "key": pl.String}


def article_lines(normalized: pl.DataFrame) -> pl.DataFrame:
    """(input_id, source, article, key) of every short line; a null key stands for the article itself.

    An article is named by (a hash of) the words of its first long line, so copies of one story count once,
    even when a reprint changed its case, quotes or commas. These rows are
    what boilerplate learning needs of a batch: the run spills them and calls `learn_boilerplate` on them all.
    """
    long_line = pl.element().str.count_matches(r"\S+") > MAX_BOILERPLATE_WORDS
    articles = normalized.select(
        "input_id", "source", "lines",
        pl.col("lines").list.eval(pl.element().filter(long_line)).list.first()
        .fill_null(pl.col("lines").list.join("\n"))
        .str.to_lowercase().str.extract_all(r"\w+").list.join(" ").hash().alias("article"),
    )
    lines = (
        articles.select("input_id", "source", "article", pl.col("lines").alias("line"))
        .explode("line")
        .filter(pl.col("line").str.count_matches(r"\S+") <= MAX_BOILERPLATE_WORDS)
        .with_columns(pl.col("line").map_elements(line_key, return_dtype=pl.String).alias("key"))
        .filter(pl.col("key") != "")
        .select("input_id", "source", "article", "key")
    )
    named = articles.select("input_id", "source", "article", pl.lit(None, dtype=pl.String).alias("key"))
    return pl.concat([named, lines]).unique(maintain_order=True).cast(ARTICLE_LINES_SCHEMA)


def learn_boilerplate(article_lines_: pl.DataFrame | pl.LazyFrame, options: CleanOptions) -> dict[str, set[str]]:
    """Per source, the keys of short lines that occur in enough of its distinct articles to be site chrome.

    Given the lines of a whole run as a scan of spilled batches, polars' streaming engine counts them out of
    core: the run's memory does not grow with its corpus."""
    rows = article_lines_.lazy().select("source", "article", "key").unique()
    counted = rows.filter(pl.col("key").is_null()).group_by("source").agg(pl.len().alias("articles"))
    repeated = (
        rows.filter(pl.col("key").is_not_null())
        .group_by("source", "key")
        .agg(pl.len().alias("line_articles"))
        .join(counted, on="source")
        .filter(
            (pl.col("line_articles") >= options.min_boilerplate_articles)
            & (pl.col("line_articles") >= options.min_boilerplate_share * pl.col("articles"))
        )
    )
    found: dict[str, set[str]] = {}
    for source, key in repeated.select("source", "key").collect(engine="streaming").iter_rows():
        found.setdefault(source, set()).add(key)
    return found


def boilerplate_lines(normalized: pl.DataFrame, options: CleanOptions) -> dict[str, set[str]]:
    """Per source, the keys of short lines that recur across its articles (one frame's worth)."""
    return learn_boilerplate(article_lines(normalized), options)


def strip_boilerplate(lines: list[str], repeated: set[str], title_hint: str | None):
    """(title, body lines, removed lines): repeated site lines, the header block and glued trailers go.

    The header block is the run of lines above the first body line (one that ends like a sentence or is
    long): its longest line is the headline, the rest is site chrome ("Rawabet Center", "In Rawabet Center").
    """
    repeats = [line_key(line) in repeated for line in lines] if repeated else [False] * len(lines)
    removed = [line for line, repeat in zip(lines, repeats) if repeat]
    lines = [line for line, repeat in zip(lines, repeats) if not repeat]
    first_body = next((i for i, line in enumerate(lines) if (_is_body_line(line) and not _opening_headline(lines, i))
                       or _paragraph_after_headline(lines, i)), len(lines))
    header, body = lines[:first_body], lines[first_body:]
    title = title_hint
    if not body:  # no line reads like a sentence: keep everything rather than guess
        header, body = [], header
    candidates = [line for line in header if not _dateline_or_byline(line)]
    if candidates:
        headline = max(reversed(candidates), key=lambda line: len(line.split()))
        title = title or headline
        removed += [line for line in header if line is not headline]
    else:
        removed += header
    body, trailers = _strip_trailers(body)
    return title, body, removed + trailers


def _opening_headline(lines: list[str], index: int) -> bool:
    """A short first line ending in "?" or "!", with text after it: a headline, not a sentence of the body."""
    return index == 0 and len(lines) > 1 and bool(HEADLINE_END.search(lines[0])) \
        and len(lines[0].split()) <= MAX_HEADLINE_WORDS


def _paragraph_after_headline(lines: list[str], index: int) -> bool:
    """A paragraph that lacks its full stop ("… found cracks in the piers"), below a line that can be the headline:
    longer than any line of site chrome, and not in Title Case as long headlines are. It starts the body."""
    line = lines[index]
    if len(line.split()) <= MAX_BOILERPLATE_WORDS or _title_case(line):
        return False
    return any(len(above.split()) >= MIN_HEADLINE_WORDS and not _dateline_or_byline(above) for above in lines[:index])


def _title_case(line: str) -> bool:
    long_words = [word for word in WORD.findall(line) if len(word) > 3]
    return sum(word[0].isupper() for word in long_words) * 2 >= len(long_words)


def _dateline_or_byline(line: str) -> bool:
    """A byline, a line that says when it was published, or a date with little else ("Monday 9 March 2026 14:02")."""
    if len(line.split()) > MAX_HEADLINE_WORDS:
        return False
    if BYLINE.match(line) or DATE_LINE_START.match(line):
        return True
    rest = DATE_WORDS.sub(" ", DATE.sub(" ", line))
    return DATE.search(line) is not None and len(WORD.findall(rest)) <= 1


def _is_body_line(line: str) -> bool:
    return bool(SENTENCE_END.search(line)) or len(line.split()) > BODY_LINE_WORDS


def _strip_trailers(body: list[str]) -> tuple[list[str], list[str]]:
    """Short unpunctuated lines at the end, and a few words glued after the last sentence's full stop."""
    trailers: list[str] = []
    while len(body) > 1 and not _is_body_line(body[-1]) and len(body[-1].split()) <= MAX_TRAILER_WORDS:
        trailers.insert(0, body.pop())
    if body:
        glued = GLUED_TRAILER.match(body[-1]) or KNOWN_TRAILER.match(body[-1])
        if glued and len(glued.group(2).split()) <= MAX_TRAILER_WORDS:
            trailers.insert(0, glued.group(2).strip())
            body = body[:-1] + [glued.group(1)]
    return body, trailers


def text_hash(text: str, tokens_: list[str] | None = None) -> str:
    """Hash of the text's case-folded word tokens: equal for texts that differ only in case, spacing, punctuation."""
    return hashlib.sha256(" ".join(tokens(text) if tokens_ is None else tokens_).encode()).hexdigest()


def minhash_signature(text: str, options: CleanOptions, tokens_: list[str] | None = None) -> list[int]:
    """MinHash over word shingles of the normalised tokens: datasketch's affine32 scheme with SHA-1 of each
    shingle, computed here with numpy, so that the workers do not import datasketch, whose LSH module needs
    SciPy (48 MiB and a second of start-up a process). A test pins it to datasketch's own values."""
    words_ = tokens(text) if tokens_ is None else tokens_
    size = options.shingle_words
    # every run of `size` words (all the words when there are fewer), each once
    shingles = list(set(map(" ".join, zip(*(words_[k:] for k in range(size))))) if len(words_) >= size
                    else {" ".join(words_)})
    a, b = _permutations(options.num_perm, options.minhash_seed)
    signature = np.full(options.num_perm, MAX_HASH32, dtype=np.uint32)
    for start in range(0, len(shingles), MINHASH_CHUNK):  # shingles x permutations at once, in bounded chunks
        hashes = _sha1_32_all(shingles[start:start + MINHASH_CHUNK])
        signature = np.minimum(signature, (_fmix32(hashes)[:, None] * a + b).min(axis=0))
    return signature.tolist()


_digest = operator.methodcaller("digest")


def _sha1_32_all(shingles: list[str]) -> np.ndarray:
    """datasketch's sha1_hash32 of each shingle (the first four bytes of its SHA-1, little-endian), read from the
    digests end to end rather than as a Python integer per shingle."""
    digests = b"".join(map(_digest, map(hashlib.sha1, map(str.encode, shingles))))
    return np.frombuffer(digests, dtype="<u4")[::SHA1_WORDS].astype(np.uint32)


def _fmix32(hashes: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, which datasketch's affine schemes apply before permuting."""
    hashes = hashes ^ (hashes >> np.uint32(16))
    hashes = hashes * np.uint32(0x85EBCA6B)
    hashes = hashes ^ (hashes >> np.uint32(13))
    hashes = hashes * np.uint32(0xC2B2AE35)
    return hashes ^ (hashes >> np.uint32(16))


@lru_cache(maxsize=None)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations h -> a * h + b (mod 2^32, `a` odd), drawn as it draws them."""
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    return a, generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)


def clean_documents(normalized: pl.DataFrame, boilerplate: dict[str, set[str]], options: CleanOptions,
                    language: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(documents, rejects): body text with title, language, counts and dedup keys; too little text is a reject."""
    documents, rejects = [], []
    for row in normalized.iter_rows(named=True):
        title, body, removed = strip_boilerplate(row["lines"], boilerplate.get(row["source"], set()),
                                                 row["title_hint"])
        text = "\n\n".join(body)
        code = language or detect_language(text or (title or ""))
        sentences = sentence_spans(text, code)
        try:
            if not text:
                raise InputError("empty", "no text is left once site boilerplate is removed")
            if len(sentences) < options.min_sentences:
                raise InputError("too_short", f"{len(sentences)} sentence(s) after cleaning; "
                                              f"a summary needs at least {options.min_sentences}")
        except InputError as error:
            rejects.append(reject_row(row, "clean", error, text or "\n".join(row["lines"])))
            continue
        words_ = tokens(text)
        documents.append({
            **{key: row[key] for key in RECORD_COLUMNS},
            "title": title, "text": text, "language": code, "word_count": word_count(text),
            "sentence_count": len(sentences), "boilerplate": removed,
            "text_hash": text_hash(text, words_), "minhash": minhash_signature(text, options, words_),
        })
    return pl.DataFrame(documents, schema=DOCUMENTS_SCHEMA), pl.DataFrame(rejects, schema=REJECTS_SCHEMA)
