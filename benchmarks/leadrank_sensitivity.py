"""How much leadrank's win over Lead-3 depends on its two settings: a grid around the defaults.

    .venv/bin/python benchmarks/leadrank_sensitivity.py [CORPUS.jsonl]

For each position cost and redundancy threshold, prints leadrank's mean ROUGE F1 minus Lead-3's on the same
documents (leadrank at the reference's length in words, as `seed-digest evaluate` runs it), on the whole corpus
(default ../shared/corpora/cnndm_dev.jsonl) and on its two halves (odd and even lines), so a setting that only
wins on half the documents shows as such.
"""

import sys
from functools import partial
from pathlib import Path

from tasks import summarize as summarize_module
from tasks.evaluate import LEAD3, METRICS, EvaluationOptions, load_corpus, paired_differences
from tasks.rouge import score_documents
from tasks.summarizers import LeadBiasedCentralitySummarizer

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "cnndm_dev.jsonl"
POSITION_COSTS = (0.5, 1.0, 2.0)
REDUNDANCIES = (0.3, 0.4, 0.5, 1.0)  # 1.0: no redundancy removal


def main() -> None:
    corpus = load_corpus(sys.argv[1] if len(sys.argv) > 1 else CORPUS)
    print(f"{corpus.height} documents; leadrank minus {LEAD3}, ROUGE F1 points ({', '.join(METRICS)})")
    print("position_cost redundancy | all | odd lines | even lines")
    for cost in POSITION_COSTS:
        for redundancy in REDUNDANCIES:
            summarize_module.ALGORITHMS["leadrank"] = partial(
                LeadBiasedCentralitySummarizer, position_cost=cost, redundancy=redundancy)
            scores = score_documents(corpus, EvaluationOptions(algorithms=("leadrank",)))
            difference = paired_differences(scores, "leadrank")
            cells = [" ".join(f"{value:+.2f}" for value in part.mean(axis=0))
                     for part in (difference, difference[0::2], difference[1::2])]
            print(f"{cost:>13} {redundancy:>10} | " + " | ".join(cells))
    defaults = LeadBiasedCentralitySummarizer(str)
    print(f"defaults: position_cost {defaults.position_cost}, redundancy {defaults.redundancy}")


if __name__ == "__main__":
    main()
