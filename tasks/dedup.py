"""Deduplicate: one canonical document per cluster of exact or near duplicates, within a run and against data/.

Exact duplicates share the hash of their case-folded word tokens. Near duplicates are found with MinHash LSH
(datasketch): candidates from the LSH index, confirmed when the estimated Jaccard similarity of their word
shingles reaches the threshold. Documents are taken in a stable order (stored ones first, then in the order
given: by path and record in a run, by run in compaction); each one joins the first canonical document it
matches, or becomes canonical itself. So every duplicate's similarity is measured against its own canonical
document, and clusters never chain.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl
from datasketch import MinHashLSH
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.schema import DOCUMENTS, DUPLICATES

DOCUMENT_ONLY = [name for name in DOCUMENTS.names if name not in DUPLICATES.names]
DUPLICATE_COLUMNS = {"canonical_id": pl.String, "method": pl.String, "similarity": pl.Float64}


# LSH finds candidates from a lower similarity than the threshold they must then reach: its banding is an
# S-curve, and tuned at the threshold itself it would miss 60 % of pairs right at 0.8 (9 bands of 13 rows);
# tuned at 0.6 (18 bands of 7 rows) it finds 98.6 % of them, and the estimate weeds out the rest.
CANDIDATE_MARGIN = 0.2


@dataclass(frozen=True)
class DedupOptions:
    threshold: float = 0.8
    num_perm: int = 128

    @property
    def candidate_threshold(self) -> float:
        return max(0.1, self.threshold - CANDIDATE_MARGIN)


class _Signature:
    """The minimal MinHash view datasketch's LSH needs: hash values and their count."""

    def __init__(self, hashvalues: np.ndarray):
        self.hashvalues = hashvalues

    def __len__(self) -> int:
        return len(self.hashvalues)


def deduplicate(documents: pl.DataFrame, history: pl.DataFrame, options: DedupOptions
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(canonical documents, duplicates) of `documents`, taken in the order given, and the canonical ones stored.

    `history` holds input_id, text_hash and minhash of stored documents; duplicates keep the documents'
    columns except those only the documents table has, and gain canonical_id, method and similarity.
    """
    lsh = MinHashLSH(threshold=options.candidate_threshold, num_perm=options.num_perm)
    by_hash: dict[str, str] = {}
    signatures: dict[str, tuple[int, np.ndarray]] = {}  # doc_id -> (order kept, signature)

    def keep(doc_id: str, hashed: str, signature: np.ndarray) -> None:
        by_hash.setdefault(hashed, doc_id)
        signatures[doc_id] = (len(signatures), signature)
        lsh.insert(doc_id, _Signature(signature), check_duplication=False)

    for doc_id, hashed, minhash in history.select("input_id", "text_hash", "minhash").iter_rows():
        keep(doc_id, hashed, np.asarray(minhash, dtype=np.uint64))

    matches: dict[str, tuple[str, str, float]] = {}
    for doc_id, hashed, minhash in documents.select("input_id", "text_hash", "minhash").iter_rows():
        if hashed in by_hash:
            matches[doc_id] = (by_hash[hashed], "exact", 1.0)
            continue
        signature = np.asarray(minhash, dtype=np.uint64)
        best = _best_candidate(signature, lsh.query(_Signature(signature)), signatures)
        if best is not None and best[1] >= options.threshold:
            matches[doc_id] = (best[0], "near", best[1])
        else:
            keep(doc_id, hashed, signature)

    match_frame = pl.DataFrame(
        [(doc_id, *match) for doc_id, match in matches.items()],
        schema={"input_id": pl.String, **DUPLICATE_COLUMNS}, orient="row",
    )
    duplicates = documents.join(match_frame, on="input_id", how="inner", maintain_order="left").drop(DOCUMENT_ONLY)
    canonical = documents.join(match_frame, on="input_id", how="anti")
    return canonical, duplicates


def _best_candidate(signature: np.ndarray, candidates: list[str],
                    signatures: dict[str, tuple[int, np.ndarray]]) -> tuple[str, float] | None:
    """(doc_id, estimated Jaccard) of the most similar candidate, the earliest kept among equals."""
    best = None
    for candidate in sorted(candidates, key=lambda doc_id: signatures[doc_id][0]):
        similarity = float(np.mean(signatures[candidate][1] == signature))
        if best is None or similarity > best[1]:
            best = (candidate, similarity)
    return best


@task(name="deduplicate", cache_policy=NO_CACHE)
def deduplicate_run(documents: pl.DataFrame, history: pl.DataFrame, options: DedupOptions
                    ) -> tuple[pl.DataFrame, pl.DataFrame]:
    return deduplicate(documents, history, options)
