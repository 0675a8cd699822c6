"""What a run tells a person in Prefect's UI: artifacts with its counts, its stage timings and sample summaries."""

import polars as pl
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.digest_steps import SAMPLE_SUMMARIES

COUNTS = ("files", "fetched", "skipped", "already_recorded", "inputs", "documents", "duplicates", "rejects",
          "summaries")


def counts_table(report) -> list[dict]:
    return [{"measure": name.replace("_", " "), "count": getattr(report, name)} for name in COUNTS]


def timings_table(report) -> list[dict]:
    return [{"stage": stage, "seconds": seconds} for stage, seconds in report.stage_seconds.items()]


def run_markdown(report, source: str, data_dir: str, samples: pl.DataFrame) -> str:
    """A short report: what came in, where it went, why anything was rejected, and a few summaries."""
    if report.run_id is None:
        return (f"# seed-digest: nothing new\n\n{report.files} file(s) under `{source}`; "
                f"{report.already_recorded} input(s) already recorded in `{data_dir}`. No rows were written.\n")
    lines = [
        f"# seed-digest run `{report.run_id}`",
        "",
        f"{report.inputs} new input(s) from `{source}` ({report.already_recorded} already recorded): "
        f"**{report.documents}** documents, **{report.duplicates}** duplicates, **{report.rejects}** rejects; "
        f"{report.summaries} summaries written to `{data_dir}`.",
        "",
    ]
    if report.reject_reasons:
        lines += ["Rejects by reason: " + ", ".join(f"{reason} {n}" for reason, n in report.reject_reasons.items()), ""]
    lines += ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.2f} |" for stage, seconds in report.stage_seconds.items()]
    for title, path, summary in samples.head(SAMPLE_SUMMARIES).iter_rows():
        lines += ["", f"## {title or path}", "", f"`{path}`", "", f"> {summary}"]
    return "\n".join(lines) + "\n"


def publish(report, source: str, data_dir: str, samples: pl.DataFrame) -> None:
    """Prefect artifacts of the run; `samples` holds title, path and summary of some documents."""
    create_table_artifact(counts_table(report), key="seed-digest-counts", description="Inputs and where they went")
    if report.stage_seconds:
        create_table_artifact(timings_table(report), key="seed-digest-timings", description="Seconds per stage")
    create_markdown_artifact(run_markdown(report, source, data_dir, samples), key="seed-digest-report",
                             description="Run report with sample summaries")
