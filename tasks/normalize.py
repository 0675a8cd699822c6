"""Normalise: decoded inputs to repaired text split into lines, the main text of HTML and Markdown extracted.

The first step of cleaning, and the only one that needs ftfy and trafilatura: it runs in the workers, so the
flow's own process, which learns boilerplate and deduplicates, never loads them.
"""

import re

import ftfy
import polars as pl
import trafilatura

from tasks.clean import NORMALIZED_SCHEMA
from tasks.ingest import RECORD_COLUMNS

# Space-like characters become a plain space; invisible ones that break words or hashes go.
SPACE_LIKE = dict.fromkeys(
    [0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000, 0x0009, 0x000B, 0x000C], " "
)
INVISIBLE = dict.fromkeys([0x200B, 0x2060, 0xFEFF, 0x00AD], None)
LINE_BREAKS = dict.fromkeys([0x2028, 0x2029, 0x0085], "\n")
CHARACTER_MAP = str.maketrans({**SPACE_LIKE, **INVISIBLE, **LINE_BREAKS})
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


def fix_text(text: str) -> str:
    """Mojibake, NBSPs and friends, odd line breaks and runs of spaces repaired; curly quotes kept."""
    text = ftfy.fix_text(text, uncurl_quotes=False, normalization="NFC")
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(CHARACTER_MAP)
    return SPACES.sub(" ", text)


def html_main_text(html: str) -> tuple[str | None, str]:
    """Title and main text of a page (trafilatura), falling back to all visible text for tiny pages."""
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
