"""Summary-quality evaluation: ROUGE against references, Lead-3 beside the algorithms, stored and reported."""

import json

import numpy as np
import polars as pl
import pytest

from tasks.evaluate import (LEAD3, METRICS, EvaluationOptions, bootstrap_interval, load_corpus, paired_differences,
                            summarize_scores)
from rouge_score import rouge_scorer

from tasks.rouge import DocumentScorer, score_documents
from tests.conftest import article


def write_corpus(path, count: int = 4):
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            topic = ["the dam", "the road", "the school", "the port", "the park"][i % 5]
            text = article(topic, 5) + "\n\n" + article(topic + " budget", 5)
            reference = "\n".join(text.replace("\n\n", " ").split(". ")[:2])
            out.write(json.dumps({"id": f"doc-{i}", "text": text, "reference": reference}) + "\n")
    return path


def test_lead3_and_every_algorithm_get_rouge_f1_per_document(tmp_path):
    corpus = load_corpus(write_corpus(tmp_path / "c.jsonl"))
    scores = score_documents(corpus, EvaluationOptions(algorithms=("lead", "lexrank")))
    assert scores.height == 4 * 3
    assert set(scores["algorithm"]) == {LEAD3, "lead", "lexrank"}
    lead = scores.filter(pl.col("algorithm") == "lead")
    assert lead["summary_sentences"].to_list() == lead["reference_sentences"].to_list() == [2] * 4
    assert (lead["summary_words"] == lead["reference_words"]).all()  # at the reference's length in words
    assert (lead["rouge1"] > 0.95).all()  # the references are the first two sentences
    assert (scores.filter(pl.col("algorithm") == LEAD3)["summary_sentences"] == 3).all()
    bounded = pl.col("summary_sentences", "reference_sentences", *METRICS).is_between(0, 100).all()
    assert scores.select(bounded).row(0) == (True,) * 5


def test_the_document_scorer_gives_rouge_scores_exactly():
    """Its shared tokens and LCS tables change nothing: the same floats as rouge-score's own scorer."""
    text = article("the dam", 6) + "\n\n" + article("the port", 6)
    sentences = text.replace("\n\n", " ").split(". ")
    references = ["\n".join(sentences[:3]), "\n".join(sentences[4:6]) + "\n\nThe dams' 5,000 workers..."]
    summaries = [sentences[:3], sentences[2:5], sentences[::2], [sentences[1], "", "..."], [], ["Workers, dam."]]
    expected = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    scorer = DocumentScorer(references)
    for summary in summaries + summaries[::-1]:  # a summary met again is answered from the first time
        wanted = [[expected.score(reference, "\n".join(summary))[metric].fmeasure for metric in METRICS]
                  for reference in references]
        assert scorer.scores(summary).tolist() == wanted


def test_the_lcs_indices_are_rouge_scores_own():
    import random

    from tasks.rouge import lcs_indices

    rng = random.Random(7)
    for _ in range(20000):  # small alphabets: many ties, where the backtracking's choices differ
        alphabet = "abcdefgh"[:rng.randrange(1, 9)]
        reference = [rng.choice(alphabet) for _ in range(rng.randrange(0, 25))]
        candidate = [rng.choice(alphabet) for _ in range(rng.randrange(0, 70))]  # past 64 bits too
        assert lcs_indices(reference, candidate) == rouge_scorer.lcs_ind(reference, candidate)


def test_means_come_with_a_bootstrap_interval_and_lead3_first(tmp_path):
    corpus = load_corpus(write_corpus(tmp_path / "c.jsonl", 6))
    options = EvaluationOptions(algorithms=("lexrank", "lead"), resamples=200)
    table = summarize_scores(score_documents(corpus, options), options)
    assert table["algorithm"].to_list()[0] == LEAD3
    for row in table.iter_rows(named=True):
        for metric in ("rouge1", "rouge2", "rougeLsum"):
            assert row[f"{metric}_low"] <= row[metric] <= row[f"{metric}_high"]


def test_paired_differences_line_up_documents(tmp_path):
    corpus = load_corpus(write_corpus(tmp_path / "c.jsonl"))
    scores = score_documents(corpus, EvaluationOptions(algorithms=("lead",)))
    differences = paired_differences(scores.reverse(), "lead")  # order of rows does not matter
    by_doc = {row["doc_id"]: row for row in scores.iter_rows(named=True) if row["algorithm"] == LEAD3}
    lead = scores.filter(pl.col("algorithm") == "lead").reverse()
    expected = [[(row[m] - by_doc[row["doc_id"]][m]) * 100 for m in METRICS] for row in lead.iter_rows(named=True)]
    assert differences.shape == (4, 3) and np.allclose(differences, expected)


def test_bootstrap_interval_narrows_with_more_documents():
    rng = np.random.default_rng(1)
    few, many = rng.normal(40, 10, 20), rng.normal(40, 10, 2000)
    assert np.diff(bootstrap_interval(many, 500, 0)) < np.diff(bootstrap_interval(few, 500, 0))
    # its draws are kept for the next mean of the same size: the interval a new generator would give
    means = few[np.random.default_rng(0).integers(0, 20, size=(500, 20))].mean(axis=1)
    assert bootstrap_interval(few, 500, 0) == tuple(np.percentile(means, [2.5, 97.5]).tolist())


def test_bad_corpus_and_options_fail_clearly(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "no reference"}\n')
    with pytest.raises(ValueError, match="line 1: a record needs JSON with text and reference"):
        load_corpus(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="unknown algorithm"):
        EvaluationOptions(algorithms=("nope",))


@pytest.mark.usefixtures("prefect_server")
def test_evaluation_flow_stores_parquet_a_report_and_an_artifact(tmp_path):
    from flows.evaluate import evaluate

    corpus = write_corpus(tmp_path / "mini.jsonl")
    report = evaluate(corpus=str(corpus), data_dir=str(tmp_path / "data"), algorithms=["lead", "pacsum"],
                      batch_size=2, resamples=100)
    assert "| **lead3** (baseline) | 3 sentences |" in report and "| pacsum | reference words |" in report
    table = pl.read_parquet(tmp_path / "data" / "evaluations" / "*" / "*.parquet")
    assert sorted(table["algorithm"]) == ["lead", LEAD3, "pacsum"] and set(table["corpus"]) == {"mini.jsonl"}
    scores = pl.read_parquet(tmp_path / "data" / "evaluation_scores" / "*" / "*.parquet")
    assert scores.height == 4 * 3 and scores["evaluation_id"].n_unique() == 1
    assert [p.read_text() for p in (tmp_path / "data" / "reports").glob("evaluation-*.md")] == [report]


def test_a_document_with_several_references_is_scored_against_each(tmp_path):
    from rouge_score import rouge_scorer

    from tasks.summarize import summarize
    from tasks.summary_options import SummaryOptions

    path = tmp_path / "multi.jsonl"
    text = article("the dam", 5) + "\n\n" + article("the dam budget", 5)
    references = ["\n".join(text.replace("\n\n", " ").split(". ")[:2]), "A final vote on the dam is expected."]
    path.write_text(json.dumps({"id": "d", "text": text, "reference": references}) + "\n", encoding="utf-8")
    corpus = load_corpus(path)
    lead = score_documents(corpus, EvaluationOptions(algorithms=("lead",))).filter(pl.col("algorithm") == "lead")
    lead = lead.row(0, named=True)
    budget = round((len(references[0].split()) + len(references[1].split())) / 2)
    assert lead["references"] == 2 and lead["reference_words"] == budget

    chosen = "\n".join(s["text"] for s in summarize(corpus["text"][0], None, "en", SummaryOptions("lead", None,
                                                                                                   None, budget)))
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    each = [scorer.score(reference, chosen) for reference in references]
    for metric in METRICS:
        assert lead[metric] == pytest.approx(np.mean([one[metric].fmeasure for one in each]))
        assert lead[f"{metric}_max"] == pytest.approx(max(one[metric].fmeasure for one in each))


def test_a_reference_that_is_neither_a_summary_nor_a_list_of_them_is_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "d", "text": article("the dam", 5), "reference": []}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: reference must be"):
        load_corpus(path)


def test_the_report_prints_each_algorithms_paired_difference_from_lead3(tmp_path):
    from tasks.evaluate import markdown_report

    corpus = load_corpus(write_corpus(tmp_path / "c.jsonl", 6))
    options = EvaluationOptions(algorithms=("lead",), resamples=200)
    table = summarize_scores(score_documents(corpus, options), options)
    lead = table.filter(pl.col("algorithm") == "lead").row(0, named=True)
    assert lead["rouge1_vs_lead3_low"] <= lead["rouge1_vs_lead3"] <= lead["rouge1_vs_lead3_high"]
    assert table.filter(pl.col("algorithm") == LEAD3)["rouge1_vs_lead3"].to_list() == [None]
    report = markdown_report("c.jsonl", table)
    assert "ROUGE-1 vs Lead-3" in report and f"{lead['rouge1_vs_lead3']:+.2f} [" in report


def test_the_default_is_also_scored_at_lead3s_length_and_paired_with_it(tmp_path):
    from tasks.evaluate import LEAD3_LENGTH, REFERENCE_LENGTH
    from tasks.summary_options import DEFAULT_ALGORITHM

    corpus = load_corpus(write_corpus(tmp_path / "c.jsonl", 6))
    options = EvaluationOptions(algorithms=(DEFAULT_ALGORITHM, "lead"), resamples=200)
    scores = score_documents(corpus, options)
    runs = scores.group_by("algorithm", "length").len().sort("algorithm", "length")
    assert runs.rows() == [("lead", REFERENCE_LENGTH, 6), ("lead3", LEAD3_LENGTH, 6),
                           (DEFAULT_ALGORITHM, LEAD3_LENGTH, 6), (DEFAULT_ALGORITHM, REFERENCE_LENGTH, 6)]
    assert (scores.filter(pl.col("length") == LEAD3_LENGTH)["summary_sentences"] == 3).all()
    table = summarize_scores(scores, options)
    assert table.select("algorithm", "length").rows()[:2] == [("lead3", LEAD3_LENGTH),
                                                              (DEFAULT_ALGORITHM, LEAD3_LENGTH)]
    at_three = paired_differences(scores, DEFAULT_ALGORITHM, LEAD3_LENGTH)
    assert table.row(1, named=True)["rouge1_vs_lead3"] == pytest.approx(at_three[:, 0].mean())
