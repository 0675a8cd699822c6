"""Summarizers of our own, with sumy's interface: the Lead baseline and two position-aware rankings.

News puts its most important sentences first (the inverted pyramid), so an unsupervised summarizer for news
should know where a sentence stands. `LeadBiasedCentralitySummarizer`, the default, is LexRank's degree
centrality with a cost per position and redundancy removal; `PositionalCentralitySummarizer` is PacSum's
directed centrality (Zheng & Lapata, 2019, "Sentence Centrality Revisited for Unsupervised Summarization").
`LearnedLeadSummarizer` (`newsrank`) re-ranks a news article's first sentences with a small logistic model
over sentence features (position, length, word salience from general-language word frequencies, centrality,
numbers, quotes), taking each next sentence by its score less a cost for repeating one already taken; its
weights are in tasks/models/newsrank.json, written by benchmarks/train_summarizer.py.
All of them rate sentences and leave the cut to sumy's `_get_best_sentences`, so a sentence count and a
word budget (a callable count) both work.
"""

import json
import math
import re
from collections import Counter, defaultdict
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
from sumy.summarizers._summarizer import AbstractSummarizer
from sumy.summarizers.edmundson import EdmundsonSummarizer
from sumy.summarizers.kl import KLSummarizer
from sumy.summarizers.lex_rank import LexRankSummarizer
from sumy.summarizers.lsa import LsaSummarizer
from sumy.summarizers.reduction import ReductionSummarizer
from sumy.summarizers.text_rank import TextRankSummarizer

from tasks.summary_options import WordBudget


class OrderedLsaSummarizer(LsaSummarizer):
    """sumy's LSA with its term rows in sorted order. sumy numbers them in a frozenset's order, which Python's
    string hashing changes from one process to the next; the SVD's last-bit differences then reorder near-tied
    sentences (2 of 120 CNN/DM documents differed between two processes)."""

    def _create_dictionary(self, document):
        return {word: row for row, word in enumerate(sorted(super()._create_dictionary(document)))}

    def _compute_term_frequency(self, matrix, smooth=0.4):
        """sumy's maximum-tf normalisation as array operations instead of a Python loop over every cell (a tenth
        of an evaluation's time): the same division, product and sum on each cell, so the same floats; a column
        whose maximum is zero stays as it is."""
        maxima = matrix.max(axis=0)
        frequency = np.divide(matrix, maxima, out=np.zeros_like(matrix), where=maxima != 0)
        return np.where(maxima != 0, smooth + (1.0 - smooth) * frequency, matrix)


class StemTableEdmundsonSummarizer(EdmundsonSummarizer):
    """sumy's Edmundson, whose four methods stem through the summarizer's `stem_word` (the StemTable) instead of
    sumy's own, which lower-cases and looks up each word through three Python calls: the same stems."""

    def _stemming(self, method):
        method.stem_word = self.stem_word
        return method

    def _build_cue_method_instance(self):
        return self._stemming(super()._build_cue_method_instance())

    def _build_key_method_instance(self):
        return self._stemming(super()._build_key_method_instance())

    def _build_title_method_instance(self):
        return self._stemming(super()._build_title_method_instance())

    def _build_location_method_instance(self):
        return self._stemming(super()._build_location_method_instance())


class BoundedKLSummarizer(KLSummarizer):
    """sumy's KL-Sum, stopped once the summary is complete: the same sentences, a fraction of the work.

    sumy rates a sentence by the greedy step that picks it and runs the steps (a KL divergence per sentence left)
    until every sentence is picked, O(n^2) divergences for a summary that takes the first few: on CNN/DailyMail
    it was a third of an evaluation's time. The summary is the first picks either way; the sentences left
    unpicked here rate below them, in document order, and the cut never reaches them. A document with two
    sentences of the same text is rated in full, as sumy rates it: its ratings are keyed by text, so the later
    pick of the two overwrites the earlier one's rating."""

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        if len(set(sentences)) < len(sentences):
            return super().__call__(document, sentences_count)
        ratings = self._bounded_ratings(sentences, sentences_count)
        return self._get_best_sentences(sentences, sentences_count, lambda sentence: ratings.get(sentence, -math.inf))

    def _bounded_ratings(self, sentences, sentences_count) -> dict:
        """sumy's _compute_ratings, up to the step that completes the summary."""
        word_freq = self.compute_tf(sentences)
        remaining = list(sentences)
        remaining_words = [self._get_content_words_in_sentence(sentence) for sentence in sentences]
        summary, ratings, summary_words = [], {}, 0
        while remaining and not _complete(sentences_count, len(summary), summary_words):
            summary_as_word_list = self._get_all_words_in_doc(summary)
            kls = [self._kl_divergence(self._joint_freq(words, summary_as_word_list), word_freq)
                   for words in remaining_words]
            best = self._find_index_of_best_sentence(kls)
            sentence = remaining.pop(best)
            del remaining_words[best]
            summary.append(sentence)
            ratings[sentence] = -len(ratings)
            summary_words += WordBudget.sentence_words(sentence)
        return ratings


class CountedReductionSummarizer(ReductionSummarizer):
    """sumy's Reduction with each pair's count of shared words taken from the two sentences' word counts, not by
    comparing every word of one with every word of the other (the pairs' Python loop was the slowest part of an
    evaluation's summaries). The count is an integer and the rest is sumy's own arithmetic, in sumy's order, so
    the ratings are the same floats."""

    def rate_sentences(self, document):
        counted = []
        for sentence in document.sentences:
            words = self._to_words_set(sentence)
            counted.append((sentence, Counter(words), len(words)))
        ratings = defaultdict(float)
        for (sentence1, counts1, length1), (sentence2, counts2, length2) in combinations(counted, 2):
            shared = sum(count * counts2[word] for word, count in counts1.items() if word in counts2)
            rank = 0.0
            if shared:
                norm = math.log(length1) + math.log(length2)
                rank = 0.0 if norm == 0.0 else shared / norm
            ratings[sentence1] += rank
            ratings[sentence2] += rank
        return ratings


class ScalarTextRankSummarizer(TextRankSummarizer):
    """sumy's TextRank with its edge weight's zero test done on the float itself: sumy calls numpy.isclose for
    each of a document's sentence pairs, a costly call on a scalar. A sum of two logarithms of lengths is never
    negative, so isclose(norm, 0) (|norm| <= 1e-8) is norm <= 1e-8; the weights are the same floats."""

    @staticmethod
    def _rate_sentences_edge(words1, words2):
        rank = sum(words2.count(w) for w in words1)
        if rank == 0:
            return 0.0
        norm = math.log(len(words1)) + math.log(len(words2))
        return float(rank) if norm <= 1e-8 else rank / norm


class CachedLexRankSummarizer(LexRankSummarizer):
    """sumy's LexRank with each sentence's word set and squared tf-idf length built once, not again for each of
    the sentence's pairs as sumy's cosine_similarity does: the same sums in the same order (a frozenset built
    from the same list iterates in the same order), so the same matrix; the pairs' loop was most of LexRank's
    time."""

    def _create_matrix(self, sentences, threshold, tf_metrics, idf_metrics):
        unique = [frozenset(sentence) for sentence in sentences]
        squares = [sum((tf[term] * idf_metrics[term]) ** 2 for term in words) for words, tf in zip(unique, tf_metrics)]
        count = len(sentences)
        matrix = np.zeros((count, count))
        for row, (words1, tf1, square1) in enumerate(zip(unique, tf_metrics, squares)):
            for col, (words2, tf2, square2) in enumerate(zip(unique, tf_metrics, squares)):
                numerator = 0.0
                for term in words1 & words2:
                    numerator += tf1[term] * tf2[term] * idf_metrics[term] ** 2
                cosine = numerator / (math.sqrt(square1) * math.sqrt(square2)) if square1 > 0 and square2 > 0 else 0.0
                if cosine > threshold:
                    matrix[row, col] = 1.0
        degrees = matrix.sum(axis=1)  # sumy counts them one by one: the same whole numbers
        degrees[degrees == 0] = 1
        return matrix / degrees[:, None]


def _complete(sentences_count, sentences: int, words: int) -> bool:
    """Whether sumy's cut (a count, or our WordBudget) would take no more than the sentences picked so far."""
    if isinstance(sentences_count, WordBudget):
        return sentences_count.reached(words)
    return isinstance(sentences_count, int) and sentences >= sentences_count


class LeadSummarizer(AbstractSummarizer):
    """The first sentences: the Lead-k baseline of news summarisation."""

    stop_words = frozenset()

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        return self._get_best_sentences(sentences, sentences_count,
                                        by_position(-np.arange(len(sentences), dtype=float), sentences))


class TermSummarizer(AbstractSummarizer):
    """Rates sentences from their stemmed content words (stop words removed)."""

    stop_words = frozenset()
    # One document's analysis, for the other summaries of the same document (build_summarizer sets it): an
    # evaluation asks four of these summarizers, and newsrank twice, for each document.
    shared: dict | None = None

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        _, terms, similarity = self.document_terms(sentences)
        ratings = self.ratings(terms, similarity)
        return self._get_best_sentences(sentences, sentences_count, by_position(ratings, sentences))

    def document_terms(self, sentences) -> tuple[list[list[str]], list[list[str]], np.ndarray]:
        """Each sentence's content words (lower case, stop words removed) and their terms (stems), and the
        sentences' tf-idf cosine similarities (zero diagonal, read-only): once a document for the summarizers that
        share `shared`. sumy's normalize_word and stem_word are inlined: this runs for every word of every
        document."""
        def analyse():
            stop_words, stem = self.stop_words, self._stemmer
            content = [[word for word in map(str.lower, sentence.words) if word not in stop_words]
                       for sentence in sentences]
            terms = [[stem(word) for word in words] for words in content]
            similarity = tfidf_similarity(terms) if len(terms) > 1 else np.zeros((len(terms), len(terms)))
            np.fill_diagonal(similarity, 0.0)
            similarity.flags.writeable = False
            return content, terms, similarity

        return self._once(("terms", self.stop_words, self._stemmer), analyse)

    def _once(self, key: tuple, compute):
        if self.shared is None:
            return compute()
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]

    def ratings(self, sentence_terms: list[list[str]], similarity: np.ndarray) -> np.ndarray:
        """Higher is better, one rating per sentence (nothing to rank below two sentences), from the terms' tf-idf
        cosines (`rate` may write into its copy)."""
        count = len(sentence_terms)
        if count < 2:
            return np.zeros(count)
        return self.rate(np.array(similarity))


class LeadBiasedCentralitySummarizer(TermSummarizer):
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


class PositionalCentralitySummarizer(TermSummarizer):
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


MODELS = Path(__file__).resolve().parent / "models"
NEWSRANK_MODEL = MODELS / "newsrank.json"
NEWSRANK_FEATURES = ("first", "log_position", "log_length", "salience_sum", "salience_mean", "rarity_mean",
                     "centrality", "first_similarity", "number", "capitals", "quote", "question")
WORDFREQ_LIST = "small"  # wordfreq's list of each language's ~30,000 commonest words: 4 MB a language in memory
WORDFREQ_ALIASES = {"no": "nb"}  # Norwegian as language identification names it, as wordfreq names it (Bokmål)
UNLISTED_FREQUENCY = 1e-7  # a word outside the list (a name, a rare word): rarer than any listed word
NUMBER = re.compile(r"\d")
QUOTE = re.compile(r"[\"“”‘’'«»„]")


@lru_cache(maxsize=None)
def word_frequencies(language: str | None) -> dict[str, float]:
    """wordfreq's general-language frequency of each common word of `language` (ISO 639-1), shipped inside the
    package; an empty table for a language it does not cover (every word then counts as equally rare)."""
    import wordfreq  # here, not at import: only the workers that summarise with newsrank load it

    language = WORDFREQ_ALIASES.get(language, language)
    # Only a language wordfreq has: for any other it would give its "nearest match" (English for Swahili).
    if language not in wordfreq.available_languages(wordlist=WORDFREQ_LIST):
        return {}
    return wordfreq.get_frequency_dict(language, wordlist=WORDFREQ_LIST)


@lru_cache(maxsize=None)
def load_model(path: str | Path = NEWSRANK_MODEL) -> dict:
    """A linear sentence model: {features, mean, scale, weights, intercept, window, redundancy, lead_margin,
    budget_redundancy, budget_margin, ...} (see the trainer)."""
    model = json.loads(Path(path).read_text(encoding="utf-8"))
    if tuple(model["features"]) != NEWSRANK_FEATURES:
        raise ValueError(f"{path}: the model's features {model['features']} are not {NEWSRANK_FEATURES}")
    for key in ("mean", "scale", "weights"):
        model[key] = np.asarray(model[key], dtype=float)
    return model


def standardised(values: np.ndarray) -> np.ndarray:
    """In standard deviations from the document's mean (zeros when all sentences are alike)."""
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros(len(values))


class LearnedLeadSummarizer(TermSummarizer):
    """News's first sentences re-ranked by a small trained model.

    Each of the first `window` sentences (the model's, 7) gets the logistic model's score over its features, in
    the order of NEWSRANK_FEATURES: is it the first, log(1 + position), log(1 + words), its content words'
    salience (how often each recurs in the document times its rarity in the language, -log of wordfreq's
    general-language frequency: summed, and per word), their mean rarity, its tf-idf degree centrality, its
    cosine with the first sentence, whether it has a number, its share of capitalised words (names), whether
    it opens with a quotation mark and whether it is a question. The ratings take those sentences one at a
    time, each next one the best by its score less the model's `redundancy` times its highest tf-idf cosine
    with one already taken (maximal marginal relevance: news repeats its lead, and the score alone would take
    two sentences that say the same), then the rest in document order; but a document whose sentences taken
    first are not `lead_margin` better than as many of its first ones keeps its own order (Lead-k). A summary
    of a number of words takes instead the window's subset that fills it best (`budget_ratings`). Everything is
    computed from the document and the word frequencies: no idf table, no download. A language that wordfreq
    lacks gets no rarity (its words all count the same), which leaves the salience to the document's own
    repetitions.
    """

    language: str | None = None  # ISO 639-1 code, for the word frequencies; build_summarizer sets it

    def __init__(self, stemmer, model: dict | None = None):
        super().__init__(stemmer)
        self._model = model

    @property
    def model(self) -> dict:
        """The given model, else the shipped one (loaded once a process, when first needed)."""
        return self._model if self._model is not None else load_model()

    def __call__(self, document, sentences_count):
        sentences = document.sentences
        features, similarity = self.analysed(sentences)
        if isinstance(sentences_count, WordBudget):
            words = np.array([sentences_count.sentence_words(sentence) for sentence in sentences])
            ratings = self.budget_ratings(features, similarity, words, sentences_count.words)
        else:
            ratings = self.ratings(features, similarity, sentences_count)
        return self._get_best_sentences(sentences, sentences_count, by_position(ratings, sentences))

    def features(self, sentences) -> np.ndarray:
        """One row per sentence, one column per NEWSRANK_FEATURES name."""
        return self.analysed(sentences)[0]

    def analysed(self, sentences) -> tuple[np.ndarray, np.ndarray]:
        """The features, and the sentences' tf-idf cosine similarities (zero diagonal) that the ratings use: once
        a document for the summaries that share `shared` (a run's length and a word budget)."""
        if not sentences:
            return np.zeros((0, len(NEWSRANK_FEATURES))), np.zeros((0, 0))
        return self._once(("newsrank", self.stop_words, self._stemmer, self.language),
                          lambda: self._analyse(sentences))

    def _analyse(self, sentences) -> tuple[np.ndarray, np.ndarray]:
        count = len(sentences)
        frequencies = word_frequencies(self.language)
        texts = [str(sentence) for sentence in sentences]
        sentence_words = [sentence.words for sentence in sentences]
        content, terms, similarity = self.document_terms(sentences)
        rarity = [[-math.log(frequencies.get(word, UNLISTED_FREQUENCY) or UNLISTED_FREQUENCY) for word in words]
                  for words in content]
        spread = Counter(term for sentence_terms in terms for term in set(sentence_terms))
        salience = np.array([sum((spread[term] - 1) * rare for term, rare in zip(sentence_terms, rarities))
                             for sentence_terms, rarities in zip(terms, rarity)])
        content_words = np.array([max(1, len(sentence_terms)) for sentence_terms in terms], dtype=float)
        position = np.arange(count, dtype=float)
        columns = {
            "first": (position == 0).astype(float),
            "log_position": np.log1p(position),
            "log_length": np.log1p([len(words) for words in sentence_words]),
            "salience_sum": standardised(salience),
            "salience_mean": standardised(salience / content_words),
            "rarity_mean": standardised(np.array([sum(values) / len(values) if values else 0.0
                                                  for values in rarity])),
            "centrality": standardised(similarity.sum(axis=1)),
            "first_similarity": similarity[0],
            "number": np.array([bool(NUMBER.search(text)) for text in texts], dtype=float),
            "capitals": np.array([sum(word[:1].isupper() for word in words[1:]) / max(1, len(words) - 1)
                                  for words in sentence_words]),
            "quote": np.array([bool(QUOTE.match(text)) for text in texts], dtype=float),
            "question": np.array([text.rstrip().endswith("?") for text in texts], dtype=float),
        }
        return np.column_stack([columns[name] for name in NEWSRANK_FEATURES]), similarity

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The model's log-odds that each sentence belongs to the summary."""
        model = self.model
        return model["intercept"] + ((features - model["mean"]) / model["scale"]) @ model["weights"]

    def ratings(self, features: np.ndarray, similarity: np.ndarray, lead: int) -> np.ndarray:
        """Higher is better: the window's sentences in the order they are taken, each next one the best by its
        score less `redundancy` times its highest cosine with one taken before (ties to the earlier), then the
        rest in document order. Unless the first `lead` taken (as many as the summary's length takes from the
        lead) score, summed, at least `lead_margin` above the document's first `lead`, the window keeps the
        document's order: a model trained on 250 articles is often unsure, and then the lead is the better bet."""
        count = len(features)
        window = min(count, int(self.model["window"]))
        scores = self.scores(features[:window])
        closest = np.zeros(window)  # each sentence's highest cosine with a sentence already taken
        left, ranked = list(range(window)), []
        while left:
            taken = left.pop(int(np.argmax(scores[left] - self.model["redundancy"] * closest[left])))
            ranked.append(taken)
            closest = np.maximum(closest, similarity[taken, :window])
        lead = min(window, lead)
        if scores[ranked[:lead]].sum() - scores[:lead].sum() < self.model["lead_margin"]:
            ranked = list(range(window))  # not sure enough to leave the lead: news's own order
        return in_order(ranked, count)

    def budget_ratings(self, features: np.ndarray, similarity: np.ndarray, words: np.ndarray, budget: int
                       ) -> np.ndarray:
        """Ratings for a summary of whole sentences that reaches `budget` words: of the window's subsets that reach
        it and would fall short of it without their longest sentence (so that sumy's cut, given that one last,
        takes exactly these), and hold no sentence without words, the one with the best expected F1, estimated as
        its sentences' words weighted by the model's probability, over its words plus the budget (a longer summary
        must earn its length), less `budget_redundancy` times the tf-idf cosines between its sentences per
        sentence; taken first, then the rest in document order. Unless it beats the lead's own subset (the first
        sentences until the budget) by `budget_margin`, the summary is the lead. Picking sentences one at a time
        instead, as for a number of sentences, overshoots the budget by whatever the last one holds, which costs
        precision; this weighs each subset's length as a whole."""
        count, window = len(features), min(len(features), int(self.model["window"]))
        reached = np.cumsum(words[:window]) >= budget
        if not reached.any():  # the window holds fewer words than the budget: the lead, and more of it
            return in_order(range(count), count)
        subsets = window_subsets(window)
        probability = 1 / (1 + np.exp(-self.scores(features[:window])))
        totals = subsets @ words[:window]
        longest = (subsets * words[:window]).max(axis=1)
        pairs = np.einsum("si,ij,sj->s", subsets, similarity[:window, :window], subsets) / 2
        values = (subsets @ (probability * words[:window]) / (totals + budget)
                  - self.model["budget_redundancy"] * pairs / subsets.sum(axis=1))
        lead = int(np.argmax(reached)) + 1
        lead_row = sum(math.comb(window, size) for size in range(1, lead))  # the first subset of the lead's size
        lead_value = values[lead_row]
        # a sentence without words adds nothing but would thin the redundancy cost per sentence
        values[(totals < budget) | (totals - longest >= budget) | (subsets @ (words[:window] == 0) > 0)] = -np.inf
        best = int(np.argmax(values))
        if values[best] - lead_value < self.model["budget_margin"]:
            return in_order(range(count), count)
        chosen = sorted(np.flatnonzero(subsets[best]).tolist(), key=lambda index: words[index])
        return in_order(chosen, count)


@lru_cache(maxsize=None)
def window_subsets(window: int) -> np.ndarray:
    """Every non-empty subset of a window's sentences as a 0/1 row, by size and then in lexical order: the first
    row of each size is the lead's."""
    rows = [np.isin(np.arange(window), chosen) for size in range(1, window + 1)
            for chosen in combinations(range(window), size)]
    subsets = np.array(rows, dtype=float)
    subsets.flags.writeable = False
    return subsets


def in_order(first: list[int] | range, count: int) -> np.ndarray:
    """Ratings that rank the sentences `first` in that order, then the rest in document order."""
    taken = set(first)
    ranked = list(first) + [index for index in range(count) if index not in taken]
    ratings = np.empty(count)
    ratings[ranked] = -np.arange(count, dtype=float)
    return ratings


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
