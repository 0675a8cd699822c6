"""Summarizers of our own, with sumy's interface: the Lead baseline and two position-aware rankings.

News puts its most important sentences first (the inverted pyramid), so an unsupervised summarizer for news
should know where a sentence stands. `LeadBiasedCentralitySummarizer`, the default, is LexRank's degree
centrality with a cost per position and redundancy removal; `PositionalCentralitySummarizer` is PacSum's
directed centrality (Zheng & Lapata, 2019, "Sentence Centrality Revisited for Unsupervised Summarization").
All of them rate sentences and leave the cut to sumy's `_get_best_sentences`, so a sentence count and a
word budget (a callable count) both work.
"""

import numpy as np
from sumy.summarizers._summarizer import AbstractSummarizer
from sumy.summarizers.lsa import LsaSummarizer


class OrderedLsaSummarizer(LsaSummarizer):
    """sumy's LSA with its term rows in sorted order. sumy numbers them in a frozenset's order, which Python's
    string hashing changes from one process to the next; the SVD's last-bit differences then reorder near-tied
    sentences (2 of 120 CNN/DM documents differed between two processes)."""

    def _create_dictionary(self, document):
        return {word: row for row, word in enumerate(sorted(super()._create_dictionary(document)))}


class LeadSummarizer(AbstractSummarizer):
    """The first sentences: the Lead-k baseline of news summarisation."""

    stop_words = frozenset()

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        return self._get_best_sentences(sentences, sentences_count,
                                        by_position(-np.arange(len(sentences), dtype=float), sentences))


class _TermSummarizer(AbstractSummarizer):
    """Rates sentences from their stemmed content words (stop words removed)."""

    stop_words = frozenset()

    def _terms(self, sentence) -> list[str]:
        """sumy's normalize_word and stem_word, inlined: this runs for every word of every document."""
        stop_words, stem = self.stop_words, self._stemmer
        return [stem(word) for word in map(str.lower, sentence.words) if word not in stop_words]

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        ratings = self.ratings([self._terms(sentence) for sentence in sentences])
        return self._get_best_sentences(sentences, sentences_count, by_position(ratings, sentences))

    def ratings(self, sentence_terms: list[list[str]]) -> np.ndarray:
        """Higher is better, one rating per sentence; nothing to rank below two sentences."""
        count = len(sentence_terms)
        return self.rate(tfidf_similarity(sentence_terms)) if count > 1 else np.zeros(count)


class LeadBiasedCentralitySummarizer(_TermSummarizer):
    """Lead-biased LexRank: degree centrality over tf-idf cosine, in standard deviations, less `position_cost`
    per sentence of position; then picked greedily, a sentence whose cosine with one already picked exceeds
    `redundancy` going to the back (news repeats its lead, and a summary should not).
    """

    def __init__(self, stemmer, position_cost: float = 1.0, redundancy: float = 0.4):
        super().__init__(stemmer)
        self.position_cost = position_cost
        self.redundancy = redundancy

    def rate(self, similarity: np.ndarray) -> np.ndarray:
        """Ratings in the greedy, redundancy-aware pick order."""
        count = len(similarity)
        np.fill_diagonal(similarity, 0.0)
        degree = similarity.sum(axis=1)
        spread = degree.std()
        centrality = (degree - degree.mean()) / spread if spread > 0 else np.zeros(count)
        scores = centrality - self.position_cost * np.arange(count)
        picked: list[int] = []
        repeated: list[int] = []
        for index in np.argsort(-scores, kind="stable"):
            repeats = picked and similarity[index, picked].max() > self.redundancy
            (repeated if repeats else picked).append(int(index))
        ratings = np.empty(count)
        ratings[picked + repeated] = -np.arange(count, dtype=float)
        return ratings


class PositionalCentralitySummarizer(_TermSummarizer):
    """PacSum directed centrality with its published tf-idf settings (forward 1, backward -2, threshold 0.6)."""

    def __init__(self, stemmer, forward_weight: float = 1.0, backward_weight: float = -2.0, beta: float = 0.6):
        super().__init__(stemmer)
        self.forward_weight = forward_weight
        self.backward_weight = backward_weight
        self.beta = beta

    def rate(self, similarity: np.ndarray) -> np.ndarray:
        """Directed centrality of each sentence from tf-idf cosine similarities within the document."""
        np.fill_diagonal(similarity, np.nan)
        low, high = np.nanmin(similarity), np.nanmax(similarity)
        edges = np.nan_to_num(np.maximum(similarity - (low + self.beta * (high - low)), 0.0))
        later = np.triu(edges, k=1).sum(axis=1)
        earlier = np.tril(edges, k=-1).sum(axis=1)
        return self.forward_weight * later + self.backward_weight * earlier


def by_position(ratings: np.ndarray, sentences):
    """sumy's rating callable from an array in document order (Sentence objects compare by text, so key by id)."""
    position = {id(sentence): index for index, sentence in enumerate(sentences)}
    return lambda sentence: ratings[position[id(sentence)]]


def tfidf_similarity(sentence_terms: list[list[str]]) -> np.ndarray:
    """Cosine similarity of sentences' tf-idf vectors, idf taken over the document's sentences."""
    vocabulary: dict[str, int] = {}
    columns = [vocabulary.setdefault(term, len(vocabulary)) for terms in sentence_terms for term in terms]
    rows = np.repeat(np.arange(len(sentence_terms)), [len(terms) for terms in sentence_terms])
    width = max(1, len(vocabulary))
    matrix = np.bincount(rows * width + np.asarray(columns, dtype=np.int64),
                         minlength=len(sentence_terms) * width).reshape(len(sentence_terms), width).astype(float)
    document_frequency = (matrix > 0).sum(axis=0)
    idf = np.log((1 + len(sentence_terms)) / (1 + document_frequency)) + 1
    matrix *= idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return matrix @ matrix.T
