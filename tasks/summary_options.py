"""What a summary is asked to be: which algorithm, and how long.

Free of sumy and NLTK (tasks/summarize.py implements the algorithms named here), so that the command line and
the flow's own process can check and plan a run without loading them.
"""

from collections.abc import Callable
from dataclasses import dataclass

from tasks.language import word_count

DEFAULT_ALGORITHM = "newsrank"
ALGORITHM_NAMES = ("leadrank", "lexrank", "textrank", "lsa", "luhn", "kl", "sumbasic", "reduction", "edmundson", "lead",
                   "pacsum", "newsrank")


@dataclass(frozen=True)
class WordBudget:
    """sumy's count as a callable: the best-rated sentences, in rank order, until the summary holds `words` words."""

    words: int

    def reached(self, words: int) -> bool:
        """Whether a summary of `words` words is complete: no further sentence is added to it."""
        return words >= self.words

    @staticmethod
    def sentence_words(sentence) -> int:
        """A sentence's words as the budget counts them (a summarizer that plans for the cut counts the same)."""
        return word_count(str(sentence))

    def __call__(self, ranked):
        chosen, total = [], 0
        for info in ranked:
            if self.reached(total):
                break
            chosen.append(info)
            total += self.sentence_words(info.sentence)
        return chosen


@dataclass(frozen=True)
class SummaryOptions:
    """Which summarizer, and how long: a number of sentences, a ratio of the document's sentences, or a number
    of words (whole sentences are added in rank order until the summary reaches it)."""

    algorithm: str = DEFAULT_ALGORITHM
    sentences: int | None = 3
    ratio: float | None = None
    words: int | None = None

    def __post_init__(self):
        if self.algorithm not in ALGORITHM_NAMES:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose one of {', '.join(ALGORITHM_NAMES)}")
        if [self.sentences, self.ratio, self.words].count(None) != 2:
            raise ValueError("give the summary length as one of a number of sentences, a ratio or a number of words")
        if self.sentences is not None and self.sentences < 1:
            raise ValueError(f"sentences must be at least 1, not {self.sentences}")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], not {self.ratio}")
        if self.words is not None and self.words < 1:
            raise ValueError(f"words must be at least 1, not {self.words}")

    def count(self, sentences: int, words: Callable[[], int]) -> int | WordBudget | None:
        """sumy's sentences_count for a document of `sentences` sentences and `words()` words (counted only for a
        length in words); None: take them all."""
        if self.words is not None:
            return WordBudget(self.words) if words() > self.words else None
        wanted = self.sentences if self.sentences is not None else max(1, round(self.ratio * sentences))
        return wanted if wanted < sentences else None
