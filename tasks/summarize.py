"""Summarise: sumy extractive summaries of canonical documents, each sentence traced to its span in the text.

The sumy document model is built from our own sentence spans (sentencex) and word tokenizer, so no NLTK
data is needed; stemmers and stop words are sumy's, chosen by each document's detected language.
"""

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import polars as pl
from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
from sumy.nlp.stemmers import Stemmer, null_stemmer
from sumy.summarizers.luhn import LuhnSummarizer
from sumy.summarizers.sum_basic import SumBasicSummarizer
from sumy.utils import get_stop_words

from tasks.language import SUMY_LANGUAGES, Span, WordTokenizer, sentence_spans, word_count, words
from tasks.summary_options import SummaryOptions
from tasks.summarizers import (BoundedKLSummarizer, CachedLexRankSummarizer, CountedReductionSummarizer,
                               LeadBiasedCentralitySummarizer, LeadSummarizer, LearnedLeadSummarizer,
                               OrderedLsaSummarizer, PositionalCentralitySummarizer, ScalarTextRankSummarizer,
                               StemTableEdmundsonSummarizer, TermSummarizer)

ALGORITHMS = {
    "leadrank": LeadBiasedCentralitySummarizer, "lexrank": CachedLexRankSummarizer,
    "textrank": ScalarTextRankSummarizer, "lsa": OrderedLsaSummarizer, "luhn": LuhnSummarizer,
    "kl": BoundedKLSummarizer, "sumbasic": SumBasicSummarizer, "reduction": CountedReductionSummarizer,
    "edmundson": StemTableEdmundsonSummarizer, "lead": LeadSummarizer, "pacsum": PositionalCentralitySummarizer,
    "newsrank": LearnedLeadSummarizer,
}
EDMUNDSON_FALLBACK_WORDS = 10
STEM_CACHE_WORDS = 200_000  # distinct words a worker keeps stems of, per language
# Summaries are chosen among a document's first sentences: the rankings build sentence x sentence matrices,
# so this bounds a summary's memory (about 25 MB) whatever the document's size. News articles stay far below
# it (the longest of the dev corpora has 230 sentences); a longer document is summarised from its beginning.
MAX_SUMMARY_SENTENCES = 500

SUMMARIES_SCHEMA = {
    "doc_id": pl.String, "algorithm": pl.String, "language": pl.String, "sentences_requested": pl.Int32,
    "ratio": pl.Float64, "words_requested": pl.Int32, "summary": pl.String,
    "sentences": pl.List(pl.Struct({"index": pl.Int32, "start": pl.Int32, "end": pl.Int32, "text": pl.String})),
}


class StemTable(dict):
    """A word -> the stem of its lower case, filled as words come and bounded: news repeats its words, and NLTK's
    Snowball is pure Python (two thirds of a summary's time before stems were kept; they are the same). Its
    `__getitem__` is a summarizer's stemmer and, with `str.lower` as its `normalize_word`, sumy's `stem_word`:
    one dict lookup, not three Python calls a word (those calls were 15 % of an evaluation's profiled time)."""

    def __init__(self, stemmer):
        super().__init__()
        self.stemmer = stemmer

    def __missing__(self, word: str) -> str:
        if len(self) >= STEM_CACHE_WORDS:
            self.clear()
        stem = self[word] = self.stemmer(word.lower())
        return stem


@lru_cache(maxsize=None)
def _stemmer(language: str | None):
    """sumy's stemmer for the language, through the language's StemTable."""
    try:
        stemmer = Stemmer(language) if language else null_stemmer
    except LookupError:
        stemmer = null_stemmer
    return StemTable(stemmer).__getitem__


@lru_cache(maxsize=None)
def _stop_words(language: str | None) -> frozenset[str]:
    try:
        return frozenset(get_stop_words(language)) if language else frozenset()
    except LookupError:
        return frozenset()


def build_summarizer(algorithm: str, language: str | None, title: str | None, text: str, code: str | None = None,
                     shared: dict | None = None):
    """A configured sumy summarizer for sumy's `language` (ISO 639-1 `code`: newsrank's word frequencies);
    Edmundson gets title words as bonus words and stop words as null words. Our own summarizers keep their
    analysis of the document in `shared`, for other summaries of the same document."""
    stems = _stemmer(language)
    summarizer = ALGORITHMS[algorithm](stems)
    summarizer.normalize_word, summarizer.stem_word = str.lower, stems
    if isinstance(summarizer, TermSummarizer):
        summarizer.shared = shared
    if isinstance(summarizer, LearnedLeadSummarizer):
        summarizer.language = code
    stop_words = _stop_words(language)
    if algorithm != "edmundson":
        summarizer.stop_words = stop_words
        return summarizer
    frequent = [word for word, _ in Counter(w.lower() for w in words(text)).most_common()]
    null_words = stop_words or frozenset(frequent[:EDMUNDSON_FALLBACK_WORDS])
    title_words = {w.lower() for w in words(title or "")} - null_words
    summarizer.null_words = null_words
    summarizer.bonus_words = title_words or [w for w in frequent if w not in null_words][:EDMUNDSON_FALLBACK_WORDS]
    summarizer.stigma_words = ["\x00"]  # no stigma vocabulary for news; sumy insists on a non-empty set
    return summarizer


def document_model(text: str, title: str | None, spans: list[Span], tokenizer: WordTokenizer):
    """sumy's document: paragraphs split at blank lines, the title as a heading, each Sentence mapped to its span."""
    paragraphs: list[list[Sentence]] = [[Sentence(title, tokenizer, is_heading=True)]] if title else [[]]
    located: dict[int, tuple[int, Span]] = {}  # id(Sentence) -> (index, span)
    previous_end = 0
    for index, span in enumerate(spans):
        if "\n\n" in text[previous_end:span.start] and paragraphs[-1]:
            paragraphs.append([])
        sentence = Sentence(text[span.start:span.end], tokenizer)
        paragraphs[-1].append(sentence)
        located[id(sentence)] = (index, span)
        previous_end = span.end
    return ObjectDocumentModel([Paragraph(p) for p in paragraphs if p]), located


@dataclass(frozen=True)
class ParsedText:
    """A text split into sentences and words once, as sumy takes it, for any number of summaries of it (an
    evaluation asks a dozen of each document): the sumy document and, for each of its Sentences, its index and
    span."""

    text: str
    title: str | None
    language: str
    spans: list[Span]
    document: ObjectDocumentModel
    located: dict[int, tuple[int, Span]]  # id(Sentence) -> (index, span)
    shared: dict = field(default_factory=dict)  # the summarizers' own analysis of the document (build_summarizer)

    @cached_property
    def word_total(self) -> int:
        """The sentences' words, which a word budget is checked against: counted once for all summaries in words,
        and not at all for a summary in sentences."""
        return sum(word_count(self.text[span.start:span.end]) for span in self.spans)


def parse(text: str, title: str | None, language: str) -> ParsedText:
    spans = sentence_spans(text, language)[:MAX_SUMMARY_SENTENCES]
    tokenizer = WordTokenizer(SUMY_LANGUAGES.get(language) or language)
    return ParsedText(text, title, language, spans, *document_model(text, title, spans, tokenizer))


def summary_of(parsed: ParsedText, options: SummaryOptions) -> list[dict]:
    """The chosen sentences in source order, as {index, start, end, text} records."""
    text, spans = parsed.text, parsed.spans
    count = options.count(len(spans), lambda: parsed.word_total)
    if count is None:  # nothing to choose (and LexRank divides by zero on tiny documents)
        chosen = list(enumerate(spans))
    else:
        summarizer = build_summarizer(options.algorithm, SUMY_LANGUAGES.get(parsed.language), parsed.title, text,
                                      parsed.language, parsed.shared)
        chosen = sorted(parsed.located[id(sentence)] for sentence in summarizer(parsed.document, count))
    return [{"index": index, "start": span.start, "end": span.end, "text": text[span.start:span.end]}
            for index, span in chosen]


def summarize(text: str, title: str | None, language: str, options: SummaryOptions) -> list[dict]:
    """One summary of a text: `summary_of(parse(...))`."""
    return summary_of(parse(text, title, language), options)


def summarize_documents(documents: pl.DataFrame, options: SummaryOptions) -> pl.DataFrame:
    """One summary row per document."""
    rows = []
    for doc_id, title, text, language in documents.select("input_id", "title", "text", "language").iter_rows():
        sentences = summarize(text, title, language, options)
        rows.append({
            "doc_id": doc_id, "algorithm": options.algorithm, "language": language,
            "sentences_requested": options.sentences, "ratio": options.ratio, "words_requested": options.words,
            "summary": " ".join(record["text"] for record in sentences), "sentences": sentences,
        })
    return pl.DataFrame(rows, schema=SUMMARIES_SCHEMA)
