"""Arrow schemas of the five Parquet tables: the single place the README's schema section describes."""

import pyarrow as pa

from tasks.evaluate import METRICS

TABLES = ("documents", "summaries", "duplicates", "rejects", "runs")
STAGES = ("ingest", "clean", "deduplicate", "summarize")  # timed per run; writing is what commits the timings

# Every input (one file, or one record of a .json/.jsonl file) carries these columns into whichever
# table accounts for it: documents, duplicates or rejects.
INPUT_FIELDS = [
    pa.field("input_id", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("record", pa.int64()),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("encoding", pa.string()),
    pa.field("size_bytes", pa.int64(), nullable=False),
    pa.field("content_sha256", pa.string(), nullable=False),
    pa.field("modified_at", pa.timestamp("us", tz="UTC")),
    pa.field("etag", pa.string()),  # a remote input's ETag (object or HTTP), with modified_at its version
    pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
]

DOCUMENTS = pa.schema(
    INPUT_FIELDS
    + [
        pa.field("title", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("word_count", pa.int32(), nullable=False),
        pa.field("sentence_count", pa.int32(), nullable=False),
        pa.field("boilerplate", pa.list_(pa.string()), nullable=False),
        pa.field("text_hash", pa.string(), nullable=False),
        pa.field("minhash", pa.list_(pa.uint32()), nullable=False),
        pa.field("lsh_bands", pa.list_(pa.uint64())),
    ]
)

DUPLICATES = pa.schema(
    INPUT_FIELDS
    + [
        pa.field("title", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_hash", pa.string(), nullable=False),
        pa.field("canonical_id", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("similarity", pa.float64(), nullable=False),
    ]
)

REJECTS = pa.schema(
    INPUT_FIELDS
    + [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("text", pa.string()),
    ]
)

SUMMARY_SENTENCE = pa.struct(
    [
        pa.field("index", pa.int32(), nullable=False),
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)

SUMMARIES = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("algorithm", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("sentences_requested", pa.int32()),
        pa.field("ratio", pa.float64()),
        pa.field("words_requested", pa.int32()),
        pa.field("summary", pa.string(), nullable=False),
        pa.field("sentences", pa.list_(SUMMARY_SENTENCE), nullable=False),
    ]
)

RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("flow_run_id", pa.string()),
        pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("finished_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("parameters", pa.string(), nullable=False),
        pa.field("files", pa.int64(), nullable=False),
        pa.field("already_recorded", pa.int64(), nullable=False),
        # Of the files listed: how many were read or downloaded (and their bytes), and how many were not, being
        # unchanged since recorded. Null in runs recorded before these columns existed.
        pa.field("fetched", pa.int64()),
        pa.field("fetched_bytes", pa.int64()),
        pa.field("skipped", pa.int64()),
        pa.field("inputs", pa.int64(), nullable=False),
        pa.field("documents", pa.int64(), nullable=False),
        pa.field("duplicates", pa.int64(), nullable=False),
        pa.field("rejects", pa.int64(), nullable=False),
        pa.field("summaries", pa.int64(), nullable=False),
        pa.field("stage_seconds", pa.struct([pa.field(stage, pa.float64()) for stage in STAGES]), nullable=False),
    ]
)

SCHEMAS = {
    "documents": DOCUMENTS,
    "summaries": SUMMARIES,
    "duplicates": DUPLICATES,
    "rejects": REJECTS,
    "runs": RUNS,
}

INPUT_COLUMNS = [field.name for field in INPUT_FIELDS]

# Summary-quality evaluations (`seed-digest evaluate`): not part of a digest run's commit, written on their own.

EVALUATIONS = pa.schema(
    [
        pa.field("evaluation_id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("documents", pa.int64(), nullable=False),
        pa.field("algorithm", pa.string(), nullable=False),
        pa.field("length", pa.string(), nullable=False),
    ]
    + [pa.field(f"{metric}{suffix}", pa.float64(), nullable=False)
       for metric in METRICS for suffix in ("", "_low", "_high", "_max")]
    + [pa.field(f"{metric}{suffix}", pa.float64()) for metric in METRICS
       for suffix in ("_vs_lead3", "_vs_lead3_low", "_vs_lead3_high")]  # null on Lead-3's own row
    + [pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False)]
)

EVALUATION_SCORES = pa.schema(
    [
        pa.field("evaluation_id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("algorithm", pa.string(), nullable=False),
        pa.field("length", pa.string(), nullable=False),
        pa.field("references", pa.int32(), nullable=False),
        pa.field("summary_sentences", pa.int32(), nullable=False),
        pa.field("reference_sentences", pa.int32(), nullable=False),
        pa.field("summary_words", pa.int32(), nullable=False),
        pa.field("reference_words", pa.int32(), nullable=False),
    ]
    + [pa.field(metric, pa.float64(), nullable=False) for metric in METRICS]
    + [pa.field(f"{metric}_max", pa.float64(), nullable=False) for metric in METRICS]
)

EVALUATION_SCHEMAS = {"evaluations": EVALUATIONS, "evaluation_scores": EVALUATION_SCORES}
