"""ROUGE scores of one batch of a corpus (tasks/evaluate.py describes the evaluation): run by the workers, the
only processes that load rouge-score, NLTK and sumy.
"""

from collections import Counter
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import polars as pl
from nltk.stem import porter
from rouge_score import rouge_scorer, scoring, tokenize, tokenizers

from tasks.clean import strip_boilerplate
from tasks.evaluate import (LEAD3, LEAD3_LENGTH, LEAD3_SENTENCES, METRICS, REFERENCE_LENGTH, SCORES_SCHEMA,
                            EvaluationOptions)
from tasks.language import detect_language, word_count
from tasks.normalize import fix_text, text_lines
from tasks.summarize import parse, summary_of
from tasks.summary_options import DEFAULT_ALGORITHM, SummaryOptions

STEM_CACHE_WORDS = 100_000


def reference_sentences(reference: str) -> list[str]:
    return [line.strip() for line in reference.splitlines() if line.strip()]


def cleaned(text: str, title: str | None) -> tuple[str | None, str]:
    """(title, body) of a corpus document, cleaned as a digest run cleans a file."""
    title, body, _ = strip_boilerplate(text_lines(fix_text(text)), set(), title)
    return title, "\n\n".join(body)


class StemCachedTokenizer(tokenizers.Tokenizer):
    """rouge-score's default tokenizer with its Porter stemmer, each word stemmed once: NLTK's Porter is pure
    Python, and a corpus's summaries and references repeat their words (it was a third of the scoring time)."""

    def __init__(self):
        self._stemmer = SimpleNamespace(stem=lru_cache(maxsize=STEM_CACHE_WORDS)(porter.PorterStemmer().stem))

    def tokenize(self, text):
        return tokenize.tokenize(text, self._stemmer)


@lru_cache(maxsize=1)
def tokenizer() -> StemCachedTokenizer:
    """The tokenizer of a process, with its stem cache."""
    return StemCachedTokenizer()


class _BitRow:
    """One row of rouge-score's LCS table held as bits: zero bits mark the candidate positions where the row's LCS
    length grows (the bit-parallel LCS of Allison and Dix, as Hyyrö writes it). A cell is read as
    `j - popcount(row & low j bits)`, the integer rouge-score's table holds there."""

    __slots__ = ("bits",)

    def __init__(self, bits: int):
        self.bits = bits

    def __getitem__(self, j: int) -> int:
        return j - (self.bits & ((1 << j) - 1)).bit_count()


def lcs_indices(reference: list[str], candidate: list[str]) -> list[int]:
    """rouge-score's `lcs_ind`: the reference's indices of the longest common subsequence, read out by its own
    backtracking (`_backtrack_norec`) from its LCS table held as bits: a row costs a few integer operations
    instead of a Python step per cell (these tables were the largest part of the scoring's time), and the cells
    the backtracking reads are the same integers."""
    masks: dict[str, int] = {}
    for position, token in enumerate(candidate):
        masks[token] = masks.get(token, 0) | 1 << position
    full = (1 << len(candidate)) - 1
    rows, row = [_BitRow(full)], full
    for token in reference:
        match = row & masks.get(token, 0)
        row = ((row + match) | (row - match)) & full
        rows.append(_BitRow(row))
    return rouge_scorer._backtrack_norec(rows, reference, candidate)


def _lines(text: str) -> list[str]:
    """A summary or reference's sentences as rouge-score's ROUGE-Lsum takes them: its non-empty lines."""
    return [line for line in text.split("\n") if line]


class DocumentScorer:
    """ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 of any number of summaries of one document against its references,
    exactly as rouge-score's RougeScorer(METRICS, use_stemmer=True).score gives them, with the work the summaries
    share done once. Its functions do the counting (n-grams, each pair's longest common subsequence); this class
    keeps, for one document, each line's tokens and each (reference line, summary line) pair's LCS: a dozen
    algorithms choose among the same few dozen sentences, and the LCS tables, pure Python, were two thirds of
    an evaluation's time.

    Exactness rests on rouge-score's tokenizer being per character class: a text's tokens are its lines' tokens
    end to end, so ROUGE-1/2 (over the whole text) and ROUGE-Lsum (line by line) can share them."""

    def __init__(self, references: list[str]):
        self._tokens: dict[str, list[str]] = {}
        self._lcs: dict[tuple[int, int, str], list[int]] = {}
        self._scored: dict[tuple[str, ...], np.ndarray] = {}  # algorithms agree: 45 % of cnndm_dev's are repeats
        self._references = []
        for reference in references:
            lines = [self._line_tokens(line) for line in _lines(reference)]
            flat = [token for line in lines for token in line]
            self._references.append((lines, {n: rouge_scorer._create_ngrams(flat, n) for n in (1, 2)}))

    def _line_tokens(self, line: str) -> list[str]:
        tokens = self._tokens.get(line)
        if tokens is None:
            tokens = self._tokens[line] = tokenizer().tokenize(line)
        return tokens

    def scores(self, summary: list[str]) -> np.ndarray:
        """F1 (0-1) of the summary (its sentences) against each reference: one row per reference, one column per
        METRICS name. A summary of the same sentences as one scored before gets that one's scores."""
        key = tuple(summary)
        scored = self._scored.get(key)
        if scored is None:
            scored = self._scored[key] = self._score(summary)
            scored.flags.writeable = False
        return scored

    def _score(self, summary: list[str]) -> np.ndarray:
        lines = _lines("\n".join(summary))
        tokens = [self._line_tokens(line) for line in lines]
        flat = [token for line in tokens for token in line]
        ngrams = {n: rouge_scorer._create_ngrams(flat, n) for n in (1, 2)}
        return np.array([[rouge_scorer._score_ngrams(reference_ngrams[1], ngrams[1]).fmeasure,
                           rouge_scorer._score_ngrams(reference_ngrams[2], ngrams[2]).fmeasure,
                           self._summary_level_lcs(index, reference_lines, lines, tokens)]
                          for index, (reference_lines, reference_ngrams) in enumerate(self._references)])

    def _summary_level_lcs(self, reference: int, reference_lines: list[list[str]], lines: list[str],
                           tokens: list[list[str]]) -> float:
        """rouge_scorer._summary_level_lcs's F1, each line pair's LCS (`lcs_indices`) computed once."""
        m, n = sum(map(len, reference_lines)), sum(map(len, tokens))
        if not m or not n:
            return 0.0
        reference_counts = Counter(token for line in reference_lines for token in line)
        summary_counts = Counter(token for line in tokens for token in line)
        hits = 0
        for line_index, reference_line in enumerate(reference_lines):
            union = set()
            for line, line_tokens in zip(lines, tokens):
                key = (reference, line_index, line)
                indices = self._lcs.get(key)
                if indices is None:
                    indices = self._lcs[key] = lcs_indices(reference_line, line_tokens)
                union.update(indices)
            for token in (reference_line[i] for i in sorted(union)):
                if summary_counts[token] > 0 and reference_counts[token] > 0:
                    hits += 1
                    summary_counts[token] -= 1
                    reference_counts[token] -= 1
        return scoring.fmeasure(hits / n, hits / m)


def score_documents(corpus: pl.DataFrame, options: EvaluationOptions) -> pl.DataFrame:
    """ROUGE F1 of every algorithm and of Lead-3 on each document of a `load_corpus` frame."""
    rows = []
    for doc_id, title, text, references in corpus.iter_rows():
        title, text = cleaned(text, title)
        language = options.language or detect_language(text)
        split = [reference_sentences(reference) for reference in references]
        wanted = ["\n".join(lines) for lines in split]
        budget = round(float(np.mean([word_count(reference) for reference in references])))
        sentences = round(float(np.mean([len(lines) for lines in split])))
        runs = [(LEAD3, LEAD3_LENGTH, SummaryOptions(algorithm="lead", sentences=LEAD3_SENTENCES))] + [
            (name, REFERENCE_LENGTH, SummaryOptions(algorithm=name, sentences=None, words=budget))
            for name in options.algorithms]
        if DEFAULT_ALGORITHM in options.algorithms:
            runs.append((DEFAULT_ALGORITHM, LEAD3_LENGTH,
                         SummaryOptions(algorithm=DEFAULT_ALGORITHM, sentences=LEAD3_SENTENCES)))
        scorer, parsed = DocumentScorer(wanted), parse(text, title, language)
        for label, length_name, length in runs:
            chosen = [sentence["text"] for sentence in summary_of(parsed, length)]
            per_reference = scorer.scores(chosen)
            rows.append({"doc_id": doc_id, "algorithm": label, "length": length_name, "references": len(wanted),
                         "summary_sentences": len(chosen), "reference_sentences": sentences,
                         "summary_words": sum(map(word_count, chosen)), "reference_words": budget,
                         **dict(zip(METRICS, per_reference.mean(axis=0).tolist())),
                         **dict(zip((f"{metric}_max" for metric in METRICS), per_reference.max(axis=0).tolist()))})
    return pl.DataFrame(rows, schema=SCORES_SCHEMA)
