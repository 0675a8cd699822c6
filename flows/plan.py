"""A run's plan: its parameters checked and turned into each stage's options, before anything starts.

Free of Prefect, so the command line checks its options without loading it.
"""

import json
from dataclasses import asdict, dataclass

from tasks.clean import CleanOptions
from tasks.dedup import DedupOptions
from tasks.fetch import FetchOptions, redact, scheme_of
from tasks.language import known_language
from tasks.sources import check_source
from tasks.summary_options import SummaryOptions


@dataclass(frozen=True)
class Plan:
    """A run's checked parameters: where from, where to, and each stage's options."""

    source: str
    data_dir: str
    language: str | None
    batch_size: int
    clean: CleanOptions
    dedup: DedupOptions
    summary: SummaryOptions
    fetch: FetchOptions

    @property
    def recorded_source(self) -> str:
        """The source as the runs table and logs say it: a URL without secrets."""
        return redact(self.source) if scheme_of(self.source) else self.source

    def parameters(self) -> str:
        return json.dumps({**asdict(self), "source": self.recorded_source}, sort_keys=True)


def plan(source: str, data_dir: str, algorithm: str, sentences: int | None, ratio: float | None, words: int | None,
         language: str | None, batch_size: int, min_sentences: int, near_duplicate_threshold: float,
         fetch_timeout: float = FetchOptions.timeout) -> Plan:
    """The run's plan from the flow's parameters; a bad value fails here, before any work."""
    check_source(source)
    if not fetch_timeout > 0:
        raise ValueError(f"fetch_timeout must be more than 0 seconds, not {fetch_timeout}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if min_sentences < 1:
        raise ValueError(f"min_sentences must be at least 1, not {min_sentences}")
    if not 0 < near_duplicate_threshold <= 1:
        raise ValueError(f"near_duplicate_threshold must be in (0, 1], not {near_duplicate_threshold}")
    if language is not None and not known_language(language):
        raise ValueError(f"language {language!r} is not an ISO 639-1 code (or ISO 639-3, for a language without one) "
                         f"of a language the language model knows")
    if (ratio is not None or words is not None) and sentences is not None:
        sentences = None  # a ratio or word count given explicitly overrides the default sentence count
    clean = CleanOptions(min_sentences=min_sentences)
    return Plan(source, data_dir, language, batch_size, clean,
                DedupOptions(threshold=near_duplicate_threshold, num_perm=clean.num_perm),
                SummaryOptions(algorithm=algorithm, sentences=sentences, ratio=ratio, words=words),
                FetchOptions(timeout=fetch_timeout))
