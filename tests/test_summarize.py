"""Summarise: every sumy algorithm, length as sentences or ratio, sentences traced to their spans."""

import pytest

from tasks.summarize import ALGORITHMS, SummaryOptions, summarize
from tests.conftest import article

TEXT = "\n\n".join(article(topic, 5) for topic in ("the dam", "the new road", "the school"))


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_returns_source_sentences_in_order_with_spans(algorithm):
    sentences = summarize(TEXT, "Town council news", "en", SummaryOptions(algorithm=algorithm, sentences=3))
    assert len(sentences) == 3
    assert [s["index"] for s in sentences] == sorted(s["index"] for s in sentences)
    for s in sentences:
        assert TEXT[s["start"]:s["end"]] == s["text"]


def test_ratio_sets_the_length_from_the_sentence_count():
    assert len(summarize(TEXT, None, "en", SummaryOptions(sentences=None, ratio=0.2))) == 3
    assert len(summarize(TEXT, None, "en", SummaryOptions(sentences=None, ratio=1.0))) == 15


def test_a_short_document_gives_all_its_sentences():
    assert len(summarize("One thing happened. Then another.", None, "en", SummaryOptions(sentences=5))) == 2


def test_languages_without_a_stemmer_or_stop_words_still_summarise():
    text = "Kisima kipya kilichimbwa kijijini. Watu walifurahi sana. Maji safi sasa yanapatikana kila siku."
    assert len(summarize(text, None, "sw", SummaryOptions(sentences=2))) == 2


@pytest.mark.parametrize(("options", "message"), [
    ({"algorithm": "nope"}, "unknown algorithm"),
    ({"sentences": 0}, "at least 1"),
    ({"sentences": None, "ratio": 1.5}, "ratio must be"),
    ({"sentences": 3, "ratio": 0.5}, "either a number of sentences or a ratio"),
])
def test_bad_options_fail_with_a_clear_message(options, message):
    with pytest.raises(ValueError, match=message):
        SummaryOptions(**options)


def test_lead_takes_the_first_sentences():
    sentences = summarize(TEXT, None, "en", SummaryOptions(algorithm="lead", sentences=2))
    assert [s["index"] for s in sentences] == [0, 1]


def test_positional_centrality_prefers_the_sentence_that_later_ones_develop():
    from tasks.summarizers import PositionalCentralitySummarizer

    terms = [["storm", "flood", "town"], ["storm", "flood", "damage"], ["flood", "town", "damage"],
             ["weather", "calm"], ["storm", "town", "damage"]]
    scores = PositionalCentralitySummarizer(str).centrality(terms)
    assert scores.argmax() == 0
    assert scores[4] < scores[0]
