"""Summarizers of our own, with sumy's interface: the Lead baseline and position-aware centrality.

News puts its most important sentences first, so an unsupervised summarizer for news should know where a
sentence stands. `PositionalCentralitySummarizer` is PacSum's directed centrality (Zheng & Lapata, 2019, "Sentence
Centrality Revisited for Unsupervised Summarization") over tf-idf sentence vectors: a sentence gains from the
similar sentences after it and loses from the similar sentences before it, so the sentence that introduces
what the rest of the article develops ranks first.
"""

from collections import Counter

import numpy as np
from sumy.summarizers._summarizer import AbstractSummarizer


class LeadSummarizer(AbstractSummarizer):
    """The first sentences: the Lead-k baseline of news summarisation."""

    stop_words = frozenset()

    def __call__(self, document, sentences_count):
        return tuple(document.sentences[:sentences_count])


class PositionalCentralitySummarizer(AbstractSummarizer):
    """PacSum directed centrality with its published tf-idf settings (forward 1, backward -2, threshold 0.6)."""

    stop_words = frozenset()

    def __init__(self, stemmer, forward_weight: float = 1.0, backward_weight: float = -2.0, beta: float = 0.6):
        super().__init__(stemmer)
        self.forward_weight = forward_weight
        self.backward_weight = backward_weight
        self.beta = beta

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        scores = self.centrality([self._terms(sentence) for sentence in sentences])
        rating = {sentence: score for sentence, score in zip(sentences, scores)}
        return self._get_best_sentences(sentences, sentences_count, lambda s: rating[s])

    def _terms(self, sentence) -> list[str]:
        return [self.stem_word(word) for word in sentence.words if self.normalize_word(word) not in self.stop_words]

    def centrality(self, sentence_terms: list[list[str]]) -> np.ndarray:
        """Directed centrality of each sentence from tf-idf cosine similarities within the document."""
        count = len(sentence_terms)
        if count < 2:
            return np.zeros(count)
        similarity = tfidf_similarity(sentence_terms)
        np.fill_diagonal(similarity, np.nan)
        low, high = np.nanmin(similarity), np.nanmax(similarity)
        edges = np.nan_to_num(np.maximum(similarity - (low + self.beta * (high - low)), 0.0))
        later = np.triu(edges, k=1).sum(axis=1)
        earlier = np.tril(edges, k=-1).sum(axis=1)
        return self.forward_weight * later + self.backward_weight * earlier


def tfidf_similarity(sentence_terms: list[list[str]]) -> np.ndarray:
    """Cosine similarity of sentences' tf-idf vectors, idf taken over the document's sentences."""
    vocabulary: dict[str, int] = {}
    for terms in sentence_terms:
        for term in terms:
            vocabulary.setdefault(term, len(vocabulary))
    matrix = np.zeros((len(sentence_terms), max(1, len(vocabulary))))
    for row, terms in enumerate(sentence_terms):
        for term, frequency in Counter(terms).items():
            matrix[row, vocabulary[term]] = frequency
    document_frequency = (matrix > 0).sum(axis=0)
    idf = np.log((1 + len(sentence_terms)) / (1 + document_frequency)) + 1
    matrix *= idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return matrix @ matrix.T

