"""Deduplicate: one canonical document per cluster of exact or near duplicates, within a run and against data/.

Exact duplicates share the hash of their case-folded word tokens. Near duplicates are found with MinHash LSH:
a document's signature is cut into bands (datasketch's banding for the candidate threshold), each band hashed
to a 64-bit key, and documents sharing a key in the same band are candidates, confirmed when the estimated
Jaccard similarity of their word shingles reaches the threshold. Candidates are joins on band keys (polars),
so the stored documents are scanned from Parquet batch by batch and never held in memory; stored documents
carry their band keys in the `lsh_bands` column.

Documents are taken in a stable order (stored ones first, in `history`'s `order`, then in the order given):
each one joins the first canonical document it matches, or becomes canonical itself. So every duplicate's
similarity is measured against its own canonical document, and clusters never chain.
"""

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from tasks.schema import DOCUMENTS, DUPLICATES

DOCUMENT_ONLY = [name for name in DOCUMENTS.names if name not in DUPLICATES.names]
DUPLICATE_COLUMNS = {"canonical_id": pl.String, "method": pl.String, "similarity": pl.Float64}
HISTORY_SCHEMA = {"input_id": pl.String, "text_hash": pl.String, "minhash": pl.List(pl.UInt32),
                  "lsh_bands": pl.List(pl.UInt64), "order": pl.Int64}
EXACT_SCHEMA = {"input_id": pl.String, "text_hash": pl.String, "order": pl.Int64}
NEAR_SCHEMA = {"position": pl.Int64, "input_id": pl.String, "order": pl.Int64, "minhash": pl.List(pl.UInt32)}

# LSH finds candidates from a lower similarity than the threshold they must then reach: its banding is an
# S-curve, and tuned at the threshold itself it would miss 60 % of pairs right at 0.8 (9 bands of 13 rows);
# tuned at 0.6 (18 bands of 7 rows) it finds 98.6 % of them, and the estimate weeds out the rest.
CANDIDATE_MARGIN = 0.2
BAND_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime, applied per 32-bit hash value
BAND_OFFSET = np.uint64(0xCBF29CE484222325)


@dataclass(frozen=True)
class DedupOptions:
    threshold: float = 0.8
    num_perm: int = 128

    @property
    def candidate_threshold(self) -> float:
        return max(0.1, self.threshold - CANDIDATE_MARGIN)

    @property
    def banding(self) -> tuple[int, int]:
        """(bands, rows per band): datasketch's optimal banding for the candidate threshold."""
        return STORED_BANDING if self == DedupOptions() else optimal_banding(self.candidate_threshold, self.num_perm)


@lru_cache(maxsize=None)
def optimal_banding(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's banding, imported only here: it brings SciPy (60 MiB and a second), which a run with the
    default options does without."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


# The banding of the stored lsh_bands column, part of the tables' format: datasketch's optimum for the default
# options (candidates from 0.6, 128 permutations), which a test checks.
STORED_BANDING = (18, 7)


def band_keys(signatures: np.ndarray, banding: tuple[int, int]) -> np.ndarray:
    """(documents x bands) uint64 keys: FNV-1a over each band's hash values, so equal bands give equal keys."""
    bands, rows = banding
    values = signatures[:, :bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    keys = np.full(values.shape[:2], BAND_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for row in range(rows):
            keys = (keys ^ values[:, :, row]) * BAND_MULTIPLIER
    return keys


def signature_matrix(minhash: pl.Series) -> np.ndarray:
    """The minhash list column as a (documents x permutations) uint32 matrix."""
    return minhash.explode().to_numpy().astype(np.uint32).reshape(minhash.len(), -1 if minhash.len() else 0)


def with_band_keys(documents: pl.DataFrame) -> pl.DataFrame:
    """Documents with their `lsh_bands` (stored banding), computed from `minhash`."""
    keys = band_keys(signature_matrix(documents["minhash"]), STORED_BANDING)
    return documents.with_columns(pl.Series("lsh_bands", keys.tolist(), dtype=pl.List(pl.UInt64)))


def _long_bands(ids: pl.Series, keys: np.ndarray) -> pl.DataFrame:
    """One row per document and band: (id, band, key)."""
    count, bands = keys.shape
    return pl.DataFrame({"id": pl.Series(ids).gather(np.repeat(np.arange(count), bands)),
                         "band": np.tile(np.arange(bands, dtype=np.int32), count), "key": keys.reshape(-1)},
                        schema={"id": ids.dtype, "band": pl.Int32, "key": pl.UInt64})


def history_candidates(history: list[pl.LazyFrame], text_hashes: pl.Series, keys: pl.DataFrame,
                       banding: tuple[int, int]) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    """(exact, near) matches of a batch among stored documents, found by joins, part by part of `history`.

    exact: (input_id, text_hash, order) of stored documents with one of the batch's hashes;
    near: (position in the batch, input_id, order, minhash) of stored documents sharing a band key.
    Signatures are read only for the candidates of a part that has any; the streaming engine keeps a large
    store's band keys from being exploded in memory all at once.
    """
    exact, near = [], []
    wanted = keys.lazy().rename({"id": "position"})
    for part in history:
        exact.append(part.select("input_id", "text_hash", "order")
                     .filter(pl.col("text_hash").is_in(text_hashes.implode())).collect(engine="streaming"))
        if banding == STORED_BANDING and "lsh_bands" in part.collect_schema():
            stored = part.select("input_id", "order", "lsh_bands", pl.int_ranges(pl.col("lsh_bands").list.len())
                                 .cast(pl.List(pl.Int32)).alias("band"))
            pairs = (stored.explode("lsh_bands", "band").rename({"lsh_bands": "key"})
                     .filter(pl.col("key").is_in(keys["key"].implode()))
                     .join(wanted, on=["band", "key"]).select("position", "input_id", "order")
                     .collect(engine="streaming"))
        else:  # another threshold than the stored banding: band keys from the signatures themselves
            signatures = part.select("input_id", "order", "minhash").collect()
            computed = _long_bands(signatures["input_id"], band_keys(signature_matrix(signatures["minhash"]), banding))
            pairs = (computed.join(keys.rename({"id": "position"}), on=["band", "key"]).rename({"id": "input_id"})
                     .join(signatures.select("input_id", "order"), on="input_id")
                     .select("position", "input_id", "order"))
        if pairs.height:
            pairs = pairs.unique()
            near.append(pairs.join(part.select("input_id", "minhash").filter(
                pl.col("input_id").is_in(pairs["input_id"].implode())).collect().unique("input_id"), on="input_id"))
    return exact, near


def deduplicate(documents: pl.DataFrame, history: pl.LazyFrame | list[pl.LazyFrame], options: DedupOptions,
                run: "RunDocuments | None" = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(canonical documents, duplicates) of `documents`, taken in the order given, against the stored ones and
    those the run has kept so far.

    `history`, one frame or parts, each with input_id, text_hash, minhash, lsh_bands and a global order
    (HISTORY_SCHEMA), holds the stored documents (a part without lsh_bands has them computed); `run`, the
    documents kept by the run's earlier batches, comes after all of them. Duplicates keep the documents'
    columns except those only the documents table has, and gain canonical_id, method and similarity.
    """
    banding = options.banding
    signatures = signature_matrix(documents["minhash"])
    positions = pl.Series("position", np.arange(documents.height, dtype=np.int64))
    batch_bands = _long_bands(positions, band_keys(signatures, banding))
    parts = history if isinstance(history, list) else [history]
    exact, near = history_candidates(parts, documents["text_hash"], batch_bands, banding)
    if run is not None:
        run_exact, run_near = run.candidates(documents["text_hash"], batch_bands)
        exact, near = exact + [run_exact], near + [run_near]
    exact = pl.concat(exact) if exact else pl.DataFrame(schema=EXACT_SCHEMA)
    near = pl.concat(near) if near else pl.DataFrame(schema=NEAR_SCHEMA)
    first = exact.sort("order").group_by("text_hash", maintain_order=True).first()
    stored_exact = dict(first.select("text_hash", "input_id").iter_rows())
    near = near.sort("order")
    near_ids = near["input_id"].to_list()
    near_signatures = signature_matrix(near["minhash"]) if near.height else signatures[:0]
    stored_near: dict[int, list[int]] = {}  # position -> rows of `near`, its stored candidates in their order
    for row, position in enumerate(near["position"].to_list()):
        stored_near.setdefault(position, []).append(row)
    earlier: dict[int, list[int]] = {}  # position -> earlier positions of this batch sharing a band key
    within = batch_bands.join(batch_bands, on=["band", "key"], suffix="_earlier") \
        .filter(pl.col("id_earlier") < pl.col("id")).select("id", "id_earlier").unique()
    for position, other in within.iter_rows():
        earlier.setdefault(position, []).append(other)

    ids, hashes = documents["input_id"].to_list(), documents["text_hash"].to_list()
    kept_hashes: dict[str, str] = {}
    kept: set[int] = set()
    matches: dict[str, tuple[str, str, float]] = {}
    for position, (doc_id, hashed) in enumerate(zip(ids, hashes)):
        canonical = stored_exact.get(hashed) or kept_hashes.get(hashed)
        if canonical is not None:
            matches[doc_id] = (canonical, "exact", 1.0)
            continue
        stored_rows = stored_near.get(position, [])
        others = [other for other in sorted(earlier.get(position, [])) if other in kept]
        best = _best_candidate(signatures[position], [near_ids[row] for row in stored_rows] + [ids[o] for o in others],
                               np.concatenate([near_signatures[stored_rows], signatures[others]]))
        if best is not None and best[1] >= options.threshold:
            matches[doc_id] = (best[0], "near", best[1])
        else:
            kept.add(position)
            kept_hashes.setdefault(hashed, doc_id)

    match_frame = pl.DataFrame(
        [(doc_id, *match) for doc_id, match in matches.items()],
        schema={"input_id": pl.String, **DUPLICATE_COLUMNS}, orient="row",
    )
    duplicates = documents.join(match_frame, on="input_id", how="inner", maintain_order="left").drop(
        [name for name in DOCUMENT_ONLY if name in documents.columns])
    canonical = documents.join(match_frame, on="input_id", how="anti", maintain_order="left")
    return canonical, duplicates


def _best_candidate(signature: np.ndarray, candidates: list[str], signatures: np.ndarray
                    ) -> tuple[str, float] | None:
    """(doc_id, estimated Jaccard) of the most similar candidate, the earliest kept among equals."""
    if not candidates:
        return None
    similarities = (signatures == signature).mean(axis=1)
    best = int(np.argmax(similarities))  # the first of the highest
    return candidates[best], float(similarities[best])


def no_history() -> pl.LazyFrame:
    return pl.LazyFrame(schema=HISTORY_SCHEMA)


RUN_KEYS = [pl.col("id").cast(pl.UInt32), pl.col("band").cast(pl.UInt8),
            (pl.col("key") // pl.lit(1 << 32, pl.UInt64)).cast(pl.UInt32)]  # a band key's top 32 bits


class RunDocuments:
    """The documents a run has kept so far, compactly in memory, after every stored one in order: later batches
    are deduplicated against them without reading back what the run staged.

    Band keys are kept one row per document and band, so a batch's candidates are one hash join, not an
    explode of every document's key list at every batch (which made deduplication quadratic in time and its
    memory peak grow with the run). They are kept as their top 32 bits, with the band and the document's number
    in 8 and 32 bits (9 bytes a row instead of 20): two keys that share their top bits only make a candidate
    more, which its signature then rejects. Signatures, needed only for the few candidates, go to an unnamed
    file (in `folder`) of fixed-size rows and are read back row by row: 0.5 KB a document off the process's memory,
    which keeps about 0.25 KB a document."""

    ORDER_OFFSET = 1 << 50  # after every stored document

    def __init__(self, banding: tuple[int, int], folder: str | Path | None = None):
        self.banding = banding
        self.documents: list[pl.DataFrame] = []  # input_id, text_hash
        self.bands: list[pl.DataFrame] = []  # id (the document's number in the run), band, key: RUN_KEYS
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self.signatures = tempfile.TemporaryFile(dir=folder)  # removed when closed, or when the process ends
        self.row_bytes = 0
        self.count = 0

    def __enter__(self) -> "RunDocuments":
        return self

    def __exit__(self, *exc_info) -> None:
        self.signatures.close()

    def add(self, canonical: pl.DataFrame) -> None:
        """Keep a batch's canonical documents."""
        if canonical.height == 0:
            return
        signatures = signature_matrix(canonical["minhash"])
        numbers = pl.Series("id", np.arange(self.count, self.count + canonical.height, dtype=np.int64))
        self.bands.append(_long_bands(numbers, band_keys(signatures, self.banding)).select(RUN_KEYS))
        self.documents.append(canonical.select("input_id", "text_hash"))
        self.row_bytes = signatures.shape[1] * signatures.itemsize
        self.signatures.seek(0, os.SEEK_END)
        self.signatures.write(np.ascontiguousarray(signatures, dtype=np.uint32).tobytes())
        self.signatures.flush()
        self.count += canonical.height

    def candidates(self, text_hashes: pl.Series, keys: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(exact, near) matches of a batch among the run's documents, as `history_candidates` gives them."""
        if not self.documents:
            return pl.DataFrame(schema=EXACT_SCHEMA), pl.DataFrame(schema=NEAR_SCHEMA)
        numbered = pl.concat(self.documents).with_row_index("id").with_columns(pl.col("id").cast(pl.Int64))
        exact = numbered.filter(pl.col("text_hash").is_in(text_hashes.implode())).select(
            "input_id", "text_hash", (pl.col("id") + self.ORDER_OFFSET).alias("order"))
        keys = keys.select(pl.col("id").alias("position"), *RUN_KEYS[1:])
        shared = pl.concat(self.bands).filter(pl.col("key").is_in(keys["key"].implode()))  # a scan; then a join
        pairs = keys.join(shared, on=["band", "key"]).select("position", pl.col("id").cast(pl.Int64)).unique()
        if pairs.height == 0:
            return exact, pl.DataFrame(schema=NEAR_SCHEMA)
        near = pairs.join(numbered.select("id", "input_id"), on="id", how="left").select(
            "position", "input_id", (pl.col("id") + self.ORDER_OFFSET).alias("order"),
            pl.Series("minhash", self._signatures(pairs["id"].to_numpy())).cast(pl.List(pl.UInt32)))
        return exact, near

    def _signatures(self, numbers: np.ndarray) -> np.ndarray:
        """The signatures of the run's documents with these numbers, read row by row from the file."""
        descriptor, size = self.signatures.fileno(), self.row_bytes
        data = b"".join(os.pread(descriptor, size, int(number) * size) for number in numbers)
        return np.frombuffer(data, dtype=np.uint32).reshape(len(numbers), size // 4)
