"""Deduplicate: exact and near duplicates within a run and against stored documents."""

import polars as pl

from tasks.clean import CleanOptions, DOCUMENTS_SCHEMA, minhash_signature, text_hash
from tasks.dedup import (STORED_BANDING, DedupOptions, RunDocuments, deduplicate, no_history, optimal_banding,
                         with_band_keys)
from tests.conftest import article

OPTIONS = CleanOptions()


def documents(texts: dict[str, str]) -> pl.DataFrame:
    rows = [{"input_id": f"id-{path}", "path": path, "record": None, "source": "s", "title": None, "text": text,
             "text_hash": text_hash(text), "minhash": minhash_signature(text, OPTIONS)}
            for path, text in texts.items()]
    return pl.DataFrame(rows, schema={name: DOCUMENTS_SCHEMA[name] for name in rows[0]}).with_columns(
        [pl.lit(None, dtype=dtype).alias(name) for name, dtype in DOCUMENTS_SCHEMA.items() if name not in rows[0]])


def history(stored: pl.DataFrame) -> pl.LazyFrame:
    """Stored documents as deduplication's history: with their band keys, in the order given."""
    return (with_band_keys(stored).select("input_id", "text_hash", "minhash", "lsh_bands")
            .with_row_index("order").with_columns(pl.col("order").cast(pl.Int64)).lazy())


LONG = " ".join(article(topic, 5) for topic in ("the dam", "the road", "the school", "the port"))


def test_exact_and_near_duplicates_point_at_the_first_document_in_order():
    near = LONG.replace("before the end of the year", "before the end of this year", 1)
    docs = documents({"a.txt": LONG, "b.txt": LONG.upper(), "c.txt": near, "d.txt": article("the zoo", 5)})
    canonical, duplicates = deduplicate(docs, no_history(), DedupOptions())
    assert canonical["path"].to_list() == ["a.txt", "d.txt"]
    rows = {row["path"]: row for row in duplicates.iter_rows(named=True)}
    assert rows["b.txt"]["canonical_id"] == "id-a.txt" and rows["b.txt"]["method"] == "exact"
    assert rows["b.txt"]["similarity"] == 1.0
    assert rows["c.txt"]["canonical_id"] == "id-a.txt" and rows["c.txt"]["method"] == "near"
    assert DedupOptions().threshold <= rows["c.txt"]["similarity"] < 1.0


def test_documents_already_stored_are_canonical_for_new_ones():
    stored = history(documents({"old.txt": LONG}))
    canonical, duplicates = deduplicate(documents({"new.txt": LONG}), stored, DedupOptions())
    assert canonical.height == 0
    assert duplicates.select("path", "canonical_id", "method").row(0) == ("new.txt", "id-old.txt", "exact")


def test_different_articles_are_kept():
    docs = documents({f"{i}.txt": article(topic, 5) + " " + article(topic + " fund", 5)
                      for i, topic in enumerate(["the dam", "the road", "the school", "the port"])})
    canonical, duplicates = deduplicate(docs, no_history(), DedupOptions())
    assert canonical.height == 4 and duplicates.height == 0


def test_pairs_just_above_the_threshold_are_found():
    import random

    import numpy as np

    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    texts, expected = {}, 0
    for pair in range(30):
        base = [rng.choice(vocabulary) for _ in range(300)]
        variant = list(base)
        for position in rng.sample(range(300), 8):
            variant[position] = rng.choice(vocabulary)
        a, b = " ".join(base), " ".join(variant)
        similarity = np.mean(np.array(minhash_signature(a, OPTIONS)) == np.array(minhash_signature(b, OPTIONS)))
        if similarity >= DedupOptions().threshold:
            expected += 1
            texts[f"{pair:02d}a.txt"], texts[f"{pair:02d}b.txt"] = a, b
    assert expected >= 10
    _, duplicates = deduplicate(documents(texts), no_history(), DedupOptions())
    assert duplicates.height == expected


def test_batch_by_batch_against_the_runs_kept_documents_is_the_same_as_one_batch():
    near = LONG.replace("before the end of the year", "before the end of this year", 1)
    texts = {"a.txt": LONG, "z.txt": article("the zoo", 5), "b.txt": LONG.upper(), "c.txt": near,
             "d.txt": article("the zoo", 5), "e.txt": article("the dam", 5) + " " + article("the fund", 5)}
    whole = deduplicate(documents(texts), no_history(), DedupOptions())
    for options in (DedupOptions(), DedupOptions(threshold=0.7)):
        canonical, duplicates = [], []
        with RunDocuments(options.banding) as run:
            for batch in (["a.txt", "z.txt"], ["b.txt", "c.txt"], ["d.txt", "e.txt"]):
                kept, found = deduplicate(documents({path: texts[path] for path in batch}), no_history(), options, run)
                run.add(kept)
                canonical.append(kept)
                duplicates.append(found)
        assert pl.concat(canonical)["path"].to_list() == whole[0]["path"].to_list() == ["a.txt", "z.txt", "e.txt"]
        found = pl.concat(duplicates).select("path", "canonical_id", "method").rows()
        assert found == [("b.txt", "id-a.txt", "exact"), ("c.txt", "id-a.txt", "near"), ("d.txt", "id-z.txt", "exact")]


def test_stored_documents_without_band_keys_or_under_another_threshold_are_found_alike():
    near = LONG.replace("before the end of the year", "before the end of this year", 1)
    stored = history(documents({"old.txt": LONG, "other.txt": article("the zoo", 5)}))
    without_bands = stored.drop("lsh_bands")  # files written before the lsh_bands column existed
    for part, options in ((stored, DedupOptions()), (without_bands, DedupOptions()),
                          (stored, DedupOptions(threshold=0.7))):
        canonical, duplicates = deduplicate(documents({"new.txt": near}), [part], options)
        assert canonical.height == 0
        assert duplicates.select("canonical_id", "method").row(0) == ("id-old.txt", "near")


def test_minhash_signatures_are_datasketch_affine32_values_so_stored_signatures_stay_comparable():
    from datasketch import MinHash

    from tasks.language import tokens

    many = " ".join(f"w{i}" for i in range(9000))  # more shingles than one chunk
    for text in ("", "one", LONG, many):
        for options in (OPTIONS, CleanOptions(num_perm=64, minhash_seed=7)):
            words = tokens(text)
            expected = MinHash(num_perm=options.num_perm, seed=options.minhash_seed, scheme="affine32")
            expected.update_batch([" ".join(words[i:i + 3]).encode() for i in range(max(1, len(words) - 2))])
            assert minhash_signature(text, options) == expected.hashvalues.tolist()


def test_the_stored_banding_is_datasketchs_optimum_for_the_default_options():
    options = DedupOptions()
    assert optimal_banding(options.candidate_threshold, options.num_perm) == STORED_BANDING == options.banding
    assert DedupOptions(threshold=0.9).banding == optimal_banding(0.7, 128) != STORED_BANDING
