"""Train newsrank's sentence model (tasks/models/newsrank.json) on the shared dev corpora, and say how it does.

    .venv/bin/python benchmarks/train_summarizer.py            # cross-validation, held-out scores, writes the model
    .venv/bin/python benchmarks/train_summarizer.py --check    # the same, but fails if the shipped file differs

Each document is cleaned, split and featurised exactly as a run does (tasks/rouge.cleaned, tasks/summarize's
document model, LearnedLeadSummarizer.features). Its label: of the 3-sentence subsets of its first WINDOW
sentences, the one with the highest ROUGE-1 + ROUGE-2 + ROUGE-Lsum F1 against its reference(s) (rouge-score,
stemmed, as `seed-digest evaluate` scores); the model is an L2-regularised logistic regression (Newton's method,
numpy only, so the same data give the same weights) predicting whether each of those sentences is in that subset.
A summary then takes the window's sentences one at a time by score less REDUNDANCY times the highest cosine with
one already taken, unless those score, summed, less than LEAD_MARGIN above as many of the first sentences, when
it keeps the lead (tasks/summarizers.LearnedLeadSummarizer.ratings). A summary of a number of words takes the
window's subset that reaches it with the best expected F1 less BUDGET_REDUNDANCY times its sentences' cosines,
unless that beats the lead's subset by less than BUDGET_MARGIN (LearnedLeadSummarizer.budget_ratings). The
trainer writes these settings into the model beside the weights, and every figure below is of summaries chosen
that way.

Data: CNN/DailyMail (cnndm_dev, 250 documents, highlights) and the odd lines of BBC (bbc_dev, whose references
are long extracts: they reward long sentences, so BBC's documents together weigh BBC_SHARE of CNN/DM's; with
equal weights the model learns BBC's taste for length and loses to Lead-3 on CNN/DM). Printed:
  - CNN/DM by halves: trained on the even lines (and BBC's odd lines), tested on the odd lines, and the other
    way round: newsrank minus Lead-3 at three sentences and at the reference's word count, and minus `lead` at
    that word count, with 95 % paired bootstrap intervals, and both halves together (all 250 documents, each
    scored by a model that never saw it);
  - the same at three sentences over HALVINGS random halvings of CNN/DM (the mean over them, the lowest and the
    highest), at LEAD_MARGIN and the margins around it, and at the reference's word count against lead there,
    at BUDGET_MARGIN and BUDGET_REDUNDANCY and the settings around them: a single split's figure moves by half a
    point with the split alone;
  - the shipped model (all of CNN/DM and BBC's odd lines) on BBC's even lines, which it never saw, and on all of
    CNN/DM (seen in training: not a held-out figure).
The settings are seven: WINDOW, L2 and BBC_SHARE chosen on the odd and even lines, REDUNDANCY, LEAD_MARGIN,
BUDGET_REDUNDANCY and BUDGET_MARGIN on the random halvings (the last two on BUDGET_GRID: three pairs tie, within
0.01, for the highest mean of ROUGE-1 + ROUGE-2 + ROUGE-Lsum over the halvings, and of them this one's lowest
halving is the highest).
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from itertools import combinations
from pathlib import Path

import numpy as np

from tasks import summarize as summarize_module
from tasks.evaluate import bootstrap_interval, load_corpus
from tasks.language import SUMY_LANGUAGES, detect_language, word_count
from tasks.rouge import DocumentScorer, cleaned, reference_sentences
from tasks.summarize import ParsedText, build_summarizer, parse, summary_of
from tasks.summarizers import NEWSRANK_FEATURES, NEWSRANK_MODEL, LearnedLeadSummarizer
from tasks.summary_options import SummaryOptions

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
WINDOW = 7  # the model re-ranks a document's first seven sentences, and labels come from them
L2 = 1.0  # ridge penalty on the standardised weights (the intercept is free)
BBC_SHARE = 1 / 3  # BBC's training documents weigh, together, a third of CNN/DM's
REDUNDANCY = 2.0  # a summary's next sentence pays this times its highest tf-idf cosine with one already taken
LEAD_MARGIN = 0.3  # a summary's sentences must beat as many first ones by this much summed log-odds, or the lead
BUDGET_REDUNDANCY = 0.25  # a word budget's subset pays this times its sentences' summed cosines per sentence
BUDGET_MARGIN = 0.01  # and must beat the lead's subset by this much expected F1, or the lead
SUMMARY_SENTENCES = 3
HALVINGS = 10  # random halvings of CNN/DM scored beside its odd and even lines
MARGINS_SHOWN = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # lead margins the halvings are scored at
BUDGET_GRID = [(redundancy, margin) for redundancy in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
               for margin in (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03)]  # the budget settings tried
BUDGET_BEST_SHOWN = 6  # of which the halvings' best are printed
DIGITS = 6  # the weights are written rounded, so that a re-run writes the same file


@dataclass
class Document:
    parsed: ParsedText  # split into sentences once, for every summary the figures take of it
    sentences: list[str]
    features: np.ndarray
    references: list[str]  # one sentence a line
    budget: int  # the references' mean word count
    label: list[int]  # the best subset of the first WINDOW sentences
    scorer: DocumentScorer
    scores: dict = field(default_factory=dict)  # ROUGE of each summary scored so far, by its sentences' indices

    def scored(self, options: SummaryOptions) -> np.ndarray:
        """ROUGE-1/2/Lsum F1 in points of the document's summary (as a run makes it) against its references (mean):
        once per distinct summary, which the settings' many variants mostly share."""
        chosen = tuple(sentence["index"] for sentence in summary_of(self.parsed, options))
        if chosen not in self.scores:
            self.scores[chosen] = summary_scores(self.scorer, [self.sentences[index] for index in chosen])
        return self.scores[chosen]

    def scored_at_budget(self, algorithm: str) -> np.ndarray:
        """`scored` for a summary of the references' word count."""
        return self.scored(SummaryOptions(algorithm, sentences=None, words=self.budget))


def summary_scores(scorer: DocumentScorer, sentences: list[str]) -> np.ndarray:
    """ROUGE-1/2/Lsum F1 in points of a summary (sentences) against a document's references (mean); one scorer per
    document, so that its summaries share their sentences' tokens and LCS tables."""
    return scorer.scores(sentences).mean(axis=0) * 100


def prepared(path: Path, labelled_every: int = 1) -> list[Document]:
    """The corpus's documents, featurised; every `labelled_every`-th one from the first labelled (the others are
    only scored: labelling is most of the time)."""
    documents = []
    for index, (_doc_id, title, text, references) in enumerate(load_corpus(path).iter_rows()):
        title, text = cleaned(text, title)
        language = detect_language(text)
        parsed = parse(text, title, language)
        summarizer = build_summarizer("newsrank", SUMY_LANGUAGES.get(language), title, text, language)
        sentences = [str(sentence) for sentence in parsed.document.sentences]
        wanted = ["\n".join(reference_sentences(reference)) for reference in references]
        budget = round(float(np.mean([word_count(reference) for reference in references])))
        label, scorer = [], DocumentScorer(wanted)
        if len(sentences) > SUMMARY_SENTENCES and index % labelled_every == 0:
            subsets = list(combinations(range(min(WINDOW, len(sentences))), SUMMARY_SENTENCES))
            totals = [summary_scores(scorer, [sentences[i] for i in subset]).sum() for subset in subsets]
            label = list(subsets[int(np.argmax(totals))])
        documents.append(Document(parsed, sentences, summarizer.features(parsed.document.sentences), wanted, budget,
                                  label, scorer))
    return documents


def fit(groups: list[tuple[list[Document], float]]) -> dict:
    """Weighted L2 logistic regression over the window's sentences of the labelled documents of each group."""
    rows, labels, weights = [], [], []
    for documents, weight in groups:
        for document in documents:
            if not document.label:
                continue
            window = min(WINDOW, len(document.sentences))
            rows.append(document.features[:window])
            labels.append(np.isin(np.arange(window), document.label).astype(float))
            weights.append(np.full(window, weight))
    features, y, weight = np.vstack(rows), np.concatenate(labels), np.concatenate(weights)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    design = np.column_stack([np.ones(len(features)), (features - mean) / scale])
    penalty = L2 * np.diag([0.0] + [1.0] * len(NEWSRANK_FEATURES))
    coefficients = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-design @ coefficients))
        gradient = design.T @ (weight * (p - y)) + penalty @ coefficients
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        coefficients -= step
        if np.abs(step).max() < 1e-12:
            break
    return {"features": list(NEWSRANK_FEATURES), "mean": mean, "scale": scale, "weights": coefficients[1:],
            "intercept": float(coefficients[0]), "window": WINDOW, "redundancy": REDUNDANCY,
            "lead_margin": LEAD_MARGIN, "budget_redundancy": BUDGET_REDUNDANCY, "budget_margin": BUDGET_MARGIN}


def weighted(cnndm: list[Document], bbc: list[Document]) -> list[tuple[list[Document], float]]:
    labelled = sum(1 for document in bbc if document.label)
    return [(cnndm, 1.0), (bbc, BBC_SHARE * sum(1 for document in cnndm if document.label) / max(1, labelled))]


def use_model(model: dict) -> None:
    """Summaries by "newsrank" from here on use `model`, a candidate of the trainer's, not the shipped file."""
    summarize_module.ALGORITHMS["newsrank"] = partial(LearnedLeadSummarizer, model=model)


def differences(documents: list[Document], model: dict, word_budgets: bool = True) -> np.ndarray:
    """Per document, newsrank (this model) minus Lead-3 at three sentences and, with `word_budgets`, at the
    reference's word count, and minus lead at that word count (ROUGE-1, -2, -Lsum each), each document summarised
    as a run summarises it."""
    use_model(model)
    rows = []
    for document in documents:
        lead3 = document.scored(SummaryOptions("lead", SUMMARY_SENTENCES))
        three = document.scored(SummaryOptions("newsrank", SUMMARY_SENTENCES))
        if not word_budgets:
            rows.append(three - lead3)
            continue
        words, lead_words = document.scored_at_budget("newsrank"), document.scored_at_budget("lead")
        rows.append(np.concatenate([three - lead3, words - lead3, words - lead_words]))
    return np.array(rows)


def budget_differences(documents: list[Document], model: dict) -> np.ndarray:
    """Per document, newsrank (this model) minus lead, both at the reference's word count (ROUGE-1, -2, -Lsum)."""
    use_model(model)
    return np.array([document.scored_at_budget("newsrank") - document.scored_at_budget("lead")
                     for document in documents])


def report(name: str, by_document: np.ndarray) -> None:
    """The mean differences with their 95 % paired bootstrap intervals."""
    print(f"  {name} ({len(by_document)} documents), newsrank minus baseline, ROUGE-1 / ROUGE-2 / ROUGE-Lsum F1 "
          "points, 95 % paired bootstrap interval:")
    for column, label in enumerate(("3 sentences vs Lead-3", "reference words vs Lead-3",
                                    "reference words vs lead at reference words")):
        cells = []
        for difference in by_document[:, 3 * column:3 * column + 3].T:
            low, high = bootstrap_interval(difference, 1000, 0)
            cells.append(f"{difference.mean():+.2f} [{low:+.2f}, {high:+.2f}]")
        print(f"    {label:44s} " + " / ".join(cells))


def halvings(cnndm: list[Document], bbc_train: list[Document]) -> None:
    """newsrank minus Lead-3 at three sentences over HALVINGS random halvings of CNN/DM, each half scored by a model
    trained on the other (and BBC's odd lines), for LEAD_MARGIN and the margins around it: one split's figure
    moves by half a point with the split alone."""
    rng = np.random.default_rng(0)
    means = {margin: [] for margin in MARGINS_SHOWN}
    budget_means = {settings: [] for settings in BUDGET_GRID}
    for _ in range(HALVINGS):
        order = rng.permutation(len(cnndm))
        first, second = ([cnndm[index] for index in half] for half in np.split(order, [len(order) // 2]))
        models = [(second, fit(weighted(first, bbc_train))), (first, fit(weighted(second, bbc_train)))]
        for margin in MARGINS_SHOWN:
            held_out = np.vstack([differences(half, {**model, "lead_margin": margin}, word_budgets=False)
                                  for half, model in models])
            means[margin].append(held_out.mean(axis=0))
        for redundancy, margin in BUDGET_GRID:
            held_out = np.vstack([budget_differences(half, {**model, "budget_redundancy": redundancy,
                                                            "budget_margin": margin}) for half, model in models])
            budget_means[redundancy, margin].append(held_out.mean(axis=0))

    def spread(rows: list[np.ndarray]) -> str:
        return " / ".join(f"{column.mean():+.2f} ({column.min():+.2f}, {column.max():+.2f})"
                          for column in np.array(rows).T)

    print(f"  {HALVINGS} random halvings, all {len(cnndm)} documents held out in each, 3 sentences vs Lead-3, mean "
          "over the halvings (lowest, highest), by lead margin:")
    for margin, rows in means.items():
        print(f"    {margin:.1f}{' (the setting)' if margin == LEAD_MARGIN else '':14s} " + spread(rows))
    print(f"  the same halvings, reference words vs lead at reference words: the {BUDGET_BEST_SHOWN} budget "
          f"redundancies and margins of the {len(BUDGET_GRID)} tried with the highest mean of the three summed:")
    best = sorted(budget_means.items(), key=lambda item: -np.array(item[1]).mean(axis=0).sum())
    for (redundancy, margin), rows in best[:BUDGET_BEST_SHOWN]:
        chosen = (redundancy, margin) == (BUDGET_REDUNDANCY, BUDGET_MARGIN)
        print(f"    {redundancy:.2f}, {margin:.4f}{' (the settings)' if chosen else '':15s} " + spread(rows)
              + f"   sum {np.array(rows).mean(axis=0).sum():+.3f}")


def serialised(model: dict) -> str:
    keys = ("features", "mean", "scale", "weights", "window", "redundancy", "lead_margin", "budget_redundancy",
            "budget_margin")
    rounded = {key: ([round(float(value), DIGITS) for value in model[key]] if key in ("mean", "scale", "weights")
                     else model[key]) for key in keys}
    rounded["intercept"] = round(model["intercept"], DIGITS)
    rounded["trained_on"] = ("cnndm_dev.jsonl (all 250 documents) and the odd lines of bbc_dev.jsonl, together "
                             f"weighing {BBC_SHARE:.3f} of CNN/DM; written by benchmarks/train_summarizer.py")
    rounded["settings"] = {"window": WINDOW, "l2": L2, "bbc_share": round(BBC_SHARE, DIGITS),
                           "redundancy": REDUNDANCY, "lead_margin": LEAD_MARGIN,
                           "budget_redundancy": BUDGET_REDUNDANCY, "budget_margin": BUDGET_MARGIN,
                           "summary_sentences": SUMMARY_SENTENCES}
    return json.dumps(rounded, indent=1) + "\n"


def main() -> None:
    check = "--check" in sys.argv[1:]
    began = time.perf_counter()
    cnndm = prepared(CORPORA / "cnndm_dev.jsonl")
    bbc = prepared(CORPORA / "bbc_dev.jsonl", labelled_every=2)
    odd, even = cnndm[0::2], cnndm[1::2]
    bbc_train, bbc_held_out = bbc[0::2], bbc[1::2]
    print(f"prepared {len(cnndm)} + {len(bbc)} documents (labelled: all of CNN/DM, BBC's odd lines) in "
          f"{time.perf_counter() - began:.0f} s; window {WINDOW}, l2 {L2}, BBC share {BBC_SHARE:.3f}, "
          f"redundancy {REDUNDANCY}, lead margin {LEAD_MARGIN}, budget redundancy {BUDGET_REDUNDANCY}, budget margin "
          f"{BUDGET_MARGIN}")
    print("CNN/DM by halves (each half scored by a model that never saw it):")
    odd_lines = differences(odd, fit(weighted(even, bbc_train)))
    even_lines = differences(even, fit(weighted(odd, bbc_train)))
    report("odd lines, trained on the even lines", odd_lines)
    report("even lines, trained on the odd lines", even_lines)
    report("both halves together, each held out", np.vstack([odd_lines, even_lines]))
    halvings(cnndm, bbc_train)
    model = fit(weighted(cnndm, bbc_train))
    print("The shipped model (all of CNN/DM, BBC's odd lines):")
    report("bbc_dev even lines, held out", differences(bbc_held_out, model))
    report("cnndm_dev, all (in the training data)", differences(cnndm, model))
    print("weights:", ", ".join(f"{name} {weight:+.3f}" for name, weight in zip(NEWSRANK_FEATURES, model["weights"])))
    text = serialised(model)
    if check:
        if NEWSRANK_MODEL.read_text(encoding="utf-8") != text:
            raise SystemExit(f"{os.path.relpath(NEWSRANK_MODEL, REPO)} differs from what the script trains")
        print(f"{os.path.relpath(NEWSRANK_MODEL, REPO)} is what the script trains")
    else:
        NEWSRANK_MODEL.parent.mkdir(exist_ok=True)
        NEWSRANK_MODEL.write_text(text, encoding="utf-8")
        print(f"wrote {os.path.relpath(NEWSRANK_MODEL, REPO)}")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
