"""Normalise: decoded inputs to repaired text split into lines, the main text of HTML and Markdown extracted.

The first step of cleaning, and the only one that needs ftfy and trafilatura: it runs in the workers, so the
flow's own process, which learns boilerplate and deduplicates, never loads them.
"""

import re

import ftfy
import polars as pl

from tasks.clean import NORMALIZED_SCHEMA
from tasks.ingest import RECORD_COLUMNS

# Space-like characters become a plain space; invisible ones that break words or hashes go.
SPACE_LIKE = dict.fromkeys(map(chr, [0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000, 0x0009,
                                      0x000B, 0x000C]), " ")
INVISIBLE = dict.fromkeys(map(chr, [0x200B, 0x2060, 0xFEFF, 0x00AD]), "")
LINE_BREAKS = dict.fromkeys(map(chr, [0x2028, 0x2029, 0x0085]), "\n")
REPLACEMENTS = {**SPACE_LIKE, **INVISIBLE, **LINE_BREAKS}
# Found by one regular expression, not str.translate: translating with a dict looks up every character of the
# text (70 us a document), where these are a few.
REPLACED = re.compile("[" + "".join(REPLACEMENTS) + "]")
SPACES = re.compile(r" {2,}")
MIN_WRAP_WIDTH, MAX_WRAP_WIDTH, WRAP_FILL = 40, 100, 0.6  # hard-wrapped text: see unwrap
MARKDOWN_RULES = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), ""),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+", re.M), ""),
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),
    (re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$", re.M), ""),
]
MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)


FTFY_CONFIG = ftfy.TextFixerConfig(uncurl_quotes=False, normalization="NFC", explain=False)
# What ftfy can change in a line of ASCII: an HTML entity, a terminal escape, another control character (a carriage
# return among them). It returns any other ASCII line as it is (ASCII cannot be mojibake).
ASCII_FTFY_TARGETS = re.compile(r"[&\x00-\x08\x0b-\x1f\x7f]")


def ftfy_fixed(text: str) -> str:
    """ftfy.fix_text(text, FTFY_CONFIG), line by line as it goes, but with each ASCII line that it would return as
    it is kept without the call: most lines of news (94 % of the scale corpus's), and ftfy's nine fixers cost 45 us
    a line. A test holds it equal to ftfy.fix_text."""
    config, fixed, start = FTFY_CONFIG, [], 0
    while start < len(text):
        end = min(text.find("\n", start) + 1 or len(text), start + config.max_decode_length)
        segment = text[start:end]
        if config.unescape_html == "auto" and "<" in segment:  # from a line of HTML on, entities stay (as ftfy)
            config = config._replace(unescape_html=False)
        if segment.isascii() and not ASCII_FTFY_TARGETS.search(segment):
            fixed.append(segment)
        else:
            fixed.append(ftfy.fix_and_explain(segment, config).text)
        start = end
    return "".join(fixed)


def fix_text(text: str) -> str:
    """Mojibake, NBSPs and friends, odd line breaks and runs of spaces repaired; curly quotes kept."""
    text = ftfy_fixed(text)
    text = REPLACED.sub(lambda match: REPLACEMENTS[match.group()], text.replace("\r\n", "\n").replace("\r", "\n"))
    return SPACES.sub(" ", text)


def html_main_text(html: str) -> tuple[str | None, str]:
    """Title and main text of a page (trafilatura), falling back to all visible text for tiny pages. trafilatura is
    imported by the first page a worker meets, not by a worker that only reads text (0.19 s of its start)."""
    import trafilatura

    extracted = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False,
                                            include_tables=False, favor_precision=True)
    title = getattr(extracted, "title", None) if extracted is not None else None
    text = getattr(extracted, "text", None) if extracted is not None else None
    if not text:
        text = trafilatura.html2txt(html) or ""
    return title, text


def markdown_text(markdown: str) -> tuple[str | None, str]:
    """Title (first heading) and plain text of Markdown; headings stay as lines of their own."""
    heading = MARKDOWN_HEADING.search(markdown)
    text = MARKDOWN_HEADING.sub(r"\1", markdown)
    for pattern, replacement in MARKDOWN_RULES:
        text = pattern.sub(replacement, text)
    return (heading.group(1) if heading else None), text


def unwrap(text: str) -> str:
    """Text hard-wrapped at a fixed width (e-mail and plain-text wires wrap at 72 or 80 columns) with each
    paragraph joined back into one line; other text as it is. A paragraph is wrapped when all its lines but the
    last fill most of the text's widest line, and that width is a terminal's."""
    lines = text.split("\n")
    width = max((len(line.rstrip()) for line in lines), default=0)
    if not MIN_WRAP_WIDTH <= width <= MAX_WRAP_WIDTH:
        return text
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text):
        rows = [row.strip() for row in paragraph.split("\n") if row.strip()]
        wrapped = len(rows) > 1 and all(len(row) >= WRAP_FILL * width for row in rows[:-1])
        paragraphs.append(" ".join(rows) if wrapped else "\n".join(rows))
    return "\n\n".join(paragraphs)


def text_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def normalize_inputs(inputs: pl.DataFrame) -> pl.DataFrame:
    """Main text of each input, repaired and split into lines; the title of HTML/Markdown joins the hint."""
    rows = []
    for row in inputs.iter_rows(named=True):
        raw, title = row["raw"], row["title_hint"]
        if row["format"] == "html":
            page_title, raw = html_main_text(raw)
            title = title or page_title
        elif row["format"] == "md":
            heading, raw = markdown_text(raw)
            title = title or heading
        text = fix_text(raw)
        rows.append({**{key: row[key] for key in RECORD_COLUMNS},
                     "title_hint": fix_text(title).strip() if title else None,
                     "lines": text_lines(unwrap(text) if row["format"] in ("txt", "md") else text)})
    return pl.DataFrame(rows, schema=NORMALIZED_SCHEMA)
