"""ROUGE scores of one batch of a corpus (tasks/evaluate.py describes the evaluation): run by the workers, the
only processes that load rouge-score, NLTK and sumy.
"""

from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import polars as pl
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenize, tokenizers

from tasks.clean import strip_boilerplate
from tasks.evaluate import LEAD3, LEAD3_LENGTH, LEAD3_SENTENCES, REFERENCE_LENGTH, SCORES_SCHEMA, EvaluationOptions
from tasks.language import detect_language, word_count
from tasks.normalize import fix_text, text_lines
from tasks.schema import METRICS
from tasks.summarize import summarize
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
def scorer() -> rouge_scorer.RougeScorer:
    """The scorer of a process, with its stem cache: ROUGE-1/2/Lsum with Porter stemming, as rouge-score scores
    with use_stemmer=True."""
    return rouge_scorer.RougeScorer(list(METRICS), tokenizer=StemCachedTokenizer())


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
        for label, length_name, length in runs:
            chosen = [sentence["text"] for sentence in summarize(text, title, language, length)]
            per_reference = np.array([[scores[metric].fmeasure for metric in METRICS] for scores in
                                      (scorer().score(reference, "\n".join(chosen)) for reference in wanted)])
            rows.append({"doc_id": doc_id, "algorithm": label, "length": length_name, "references": len(wanted),
                         "summary_sentences": len(chosen), "reference_sentences": sentences,
                         "summary_words": sum(map(word_count, chosen)), "reference_words": budget,
                         **dict(zip(METRICS, per_reference.mean(axis=0).tolist())),
                         **dict(zip((f"{metric}_max" for metric in METRICS), per_reference.max(axis=0).tolist()))})
    return pl.DataFrame(rows, schema=SCORES_SCHEMA)
