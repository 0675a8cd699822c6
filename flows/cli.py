"""`seed-digest run`: an ad hoc run, with a progress bar: a flow run on the Prefect API that Prefect's settings name
(PREFECT_API_URL: in the environment, a .env, prefect.toml or pyproject.toml, or the active profile), or, when they
name none, the same steps without Prefect; `evaluate` (likewise) and `serve`."""

import argparse
import atexit
import gc
import os
import signal
import sys
from pathlib import Path

# Quiet, offline-friendly Prefect defaults for a terminal run; anything the user set wins.
PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_INTERNAL_LOGGING_LEVEL": "CRITICAL",  # its services' retries (events, logs) while an API is away
}


def parser() -> argparse.ArgumentParser:
    """The command line; it imports nothing of Prefect's, whose settings must see the environment first."""
    root = argparse.ArgumentParser(prog="seed-digest", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="digest the seed files under SOURCE into Parquet tables under DATA")
    run.add_argument("--source", default="seeds",
                     help="folder, file or glob of seed files; or s3://, gs://, az:// prefix or glob; or an http(s) "
                          "URL of a feed, sitemap, URL list or file; or a text file of URLs (default: seeds)")
    run.add_argument("--data", default="data", help="output folder of the Parquet tables (default: data)")
    run.add_argument("--algorithm", default="newsrank",
                     help="summarizer: newsrank (default), leadrank, lexrank, textrank, lsa, luhn, kl, sumbasic, "
                          "reduction, edmundson, pacsum, lead")
    length = run.add_mutually_exclusive_group()
    length.add_argument("--sentences", type=int, default=3, help="summary length in sentences (default: 3)")
    length.add_argument("--ratio", type=float, help="summary length as a share of the document's sentences")
    length.add_argument("--words", type=int, help="summary length in words: whole sentences until it is reached")
    run.add_argument("--language", help="ISO 639 code (en, de, ...) for every document instead of detecting it")
    run.add_argument("--batch-size", type=int, default=1000, help="inputs per task (default: 1000)")
    run.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    run.add_argument("--dask-address", help="run the tasks on this Dask cluster (tcp://host:8786) instead of "
                                            "local processes; default $SEED_DIGEST_DASK_ADDRESS")
    run.add_argument("--min-sentences", type=int, default=2, help="fewer sentences after cleaning is a reject")
    run.add_argument("--near-duplicate-threshold", type=float, default=0.8,
                     help="estimated Jaccard similarity of word 3-shingles from which documents are near duplicates")
    run.add_argument("--fetch-timeout", type=float, default=30.0,
                     help="seconds a remote fetch waits to connect or for the next bytes (default: 30)")
    run.add_argument("--credentials-block",
                     help="name of a Prefect Secret block holding the object store's storage options as JSON "
                          "(default: the store's own environment and configuration)")
    run.add_argument("--lock-timeout", type=float, default=0.0,
                     help="seconds to wait for another run on the same data folder (default: fail at once)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", action="store_true", help="show the run's logs (Prefect's too, with a Prefect API "
                                                            "configured)")
    evaluate = commands.add_parser("evaluate", help="ROUGE of the summarizers on a JSON Lines corpus with "
                                                    "reference summaries, beside Lead-3")
    evaluate.add_argument("--corpus", required=True, help="JSON Lines: id, text, reference (one sentence a line)")
    evaluate.add_argument("--data", default="data", help="where the evaluation tables and report go (default: data)")
    evaluate.add_argument("--algorithms", help="comma-separated summarizers (default: all)")
    evaluate.add_argument("--language", help="ISO 639 code (en, de, ...) for every document instead of detecting it")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    evaluate.add_argument("--verbose", action="store_true", help="show Prefect's logs (with a Prefect API "
                                                                 "configured: without, Prefect is not used)")
    serve = commands.add_parser("serve", help="serve prefect.yaml's deployments and schedules from this process "
                                              "(needs a running server's API: PREFECT_API_URL, in the environment "
                                              "or the active Prefect profile)")
    serve.add_argument("--prefect-yaml", default="prefect.yaml", help="deployments to serve (default: prefect.yaml)")
    serve.add_argument("--verbose", action="store_true", help="show Prefect's logs")
    return root


SERVED_SUFFIX = "-served"


def served_deployments(prefect_yaml: str) -> list:
    """prefect.yaml's deployments as RunnerDeployments: the same flows, parameters, tags and cron schedules,
    under names of their own ("daily-served"), so that serving never takes over (nor, on stopping, pauses) the
    deployments that `prefect deploy` registered for a worker."""
    import yaml
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    config = yaml.safe_load(Path(prefect_yaml).read_text(encoding="utf-8"))
    project = Path(prefect_yaml).resolve().parent  # entrypoints are relative to prefect.yaml's folder
    deployments = []
    for spec in config["deployments"]:
        limit = spec.get("concurrency_limit")
        deployments.append(load_flow_from_entrypoint(str(project / spec["entrypoint"])).to_deployment(
            name=spec["name"] + SERVED_SUFFIX, description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters", {}),
            concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
            schedules=[Cron(item["cron"], timezone=item.get("timezone", "UTC")) for item in spec.get("schedules", [])],
        ))
    return deployments


def configured_api_url() -> str | None:
    """The Prefect API a command's flow runs go to, as Prefect's settings resolve it: PREFECT_API_URL in the
    environment, else in a .env, prefect.toml or pyproject.toml ([tool.prefect]) here, else in the active profile
    (`prefect config set`, `prefect cloud login`). None when none is configured."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def tell_error(console, message: str) -> None:
    """An error as the command's one line; the message is plain text (a source's path may hold "[/x]", which rich
    would read as markup)."""
    from rich.markup import escape

    console.print("[red]error:[/red]", escape(message))


def run_evaluation(args, console) -> int:
    """With a Prefect API configured, the evaluation is a flow run on that server; without, its steps run on the
    worker pool alone (flows/evaluation.py)."""
    from flows.compute import prestart
    from flows.evaluation import evaluate_on_workers, evaluation_options, pool_size
    from tasks.evaluate import load_corpus

    algorithms = [name.strip() for name in args.algorithms.split(",")] if args.algorithms else None
    try:
        options = evaluation_options(algorithms, args.language, args.resamples)
        if not Path(args.corpus).is_file():
            raise ValueError(f"no corpus file at {args.corpus}")
        documents = load_corpus(args.corpus)  # a bad record is told now, not after the workers start
    except ValueError as error:
        tell_error(console, str(error))
        return 2
    prestart(pool_size(documents.height))  # the workers import while Prefect's settings load, for the API
    if not configured_api_url():
        try:
            print(evaluate_on_workers(args.corpus, documents, args.data, options))
        except Exception as error:  # noqa: BLE001 - one line, as a failed flow run is told
            tell_error(console, f"{type(error).__name__}: {error}")
            return 1
        return 0
    from flows.evaluate import evaluate

    try:
        state = evaluate(corpus=args.corpus, data_dir=args.data, algorithms=algorithms, language=args.language,
                         resamples=args.resamples, return_state=True)
    except Exception as error:  # noqa: BLE001 - Prefect could not even start or end the flow run
        tell_error(console, failure(error, EVALUATION_UNFINISHED))
        return 1
    if state.is_failed():
        tell_error(console, failure(state.result(raise_on_failure=False), EVALUATION_UNFINISHED))
        return 1
    print(state.result())
    return 0


def main(argv: list[str] | None = None) -> int:
    # Registered first, so run last: the exit handlers before it (Prefect's last events and logs) have run; what
    # the interpreter's collector would then walk for 0.7 to 1 s, the 200,000 objects of Prefect's and pydantic's
    # models, ends with the process without it.
    atexit.register(gc.freeze)
    args = parser().parse_args(argv)
    if args.command == "run":
        # Until its run starts the command mostly imports (polars, Prefect's settings or client): the collector,
        # which would walk their hundreds of thousands of new objects again and again, waits (0.23 of 1.2 s of
        # CPU); start_run freezes what they built and restarts it; a run that ends before it starts (bad options,
        # nothing new) gets it back below, for a Python caller's process.
        gc.disable()
    quiet = args.command != "serve" and not args.verbose  # a service keeps Prefect's logs
    for name, value in PREFECT_DEFAULTS.items():
        if quiet or not name.endswith("LOGGING_LEVEL"):
            os.environ.setdefault(name, value)
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)  # a message stays one line, whatever the width
    try:
        return run_command(args, console)
    finally:
        gc.enable()


def run_command(args, console) -> int:
    if args.command == "serve":
        from prefect import serve

        serve(*served_deployments(args.prefect_yaml))
        return 0
    if args.command == "evaluate":
        return run_evaluation(args, console)
    try:
        return run_digest(args, console)
    except KeyboardInterrupt:  # from the command's start: a traceback would say nothing more
        for signum in (signal.SIGINT, signal.SIGTERM):  # the stop is done: a second one would cut this line short
            signal.signal(signum, signal.SIG_IGN)
        console.print("stopped: a run stopped before its commit leaves nothing in the tables (the next run "
                      "removes what it had staged)")
        return 130


def run_digest(args, console) -> int:
    """`seed-digest run`: the options checked, what needs no run answered, else the run: a flow run when Prefect's
    settings name an API, else the same steps without Prefect."""
    signal.signal(signal.SIGTERM, _stop)  # as Ctrl-C: a flow run is recorded as crashed, the workers are killed
    problem = option_problem(args)
    if problem:
        tell_error(console, problem)
        return 2
    answer = answer_without_prefect(args)
    from flows.plan import plan

    try:
        run_plan = plan(args.source, args.data, args.algorithm, args.sentences, args.ratio, args.words, args.language,
                        args.batch_size, args.min_sentences, args.near_duplicate_threshold, args.fetch_timeout)
    except ValueError as error:
        tell_error(console, in_flags(str(error)))
        return 2
    if answer:
        status, message = answer
        if status:
            tell_error(console, message)
        else:
            console.print(message, markup=False)
        return status
    if args.credentials_block and not configured_api_url():
        tell_error(console, f"--credentials-block {args.credentials_block} names a Prefect Secret block, which is "
                            f"read through a Prefect API, and Prefect's settings name none ({API_PLACES})")
        return 2
    from flows.compute import prestart

    prestart(args.workers, args.dask_address)  # the workers import the stage libraries while Prefect's settings load
    if configured_api_url():
        return run_flow(args, console, run_plan.summary)
    return run_without_prefect(args, console, run_plan)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


# The flow's parameter names, as the command line spells them, for messages.
FLAGS = {"batch_size": "--batch-size", "min_sentences": "--min-sentences", "data_dir": "--data",
         "near_duplicate_threshold": "--near-duplicate-threshold", "sentences": "--sentences", "ratio": "--ratio",
         "words": "--words", "algorithm": "--algorithm", "language": "--language", "fetch_timeout": "--fetch-timeout",
         "source": "--source"}


def in_flags(message: str) -> str:
    for name, flag in FLAGS.items():
        message = message.replace(f"{name} must", f"{flag} must").replace(f"{name} '", f"{flag} '")
    return message


def option_problem(args) -> str | None:
    """What is wrong with the run's options, in the command line's words, before anything starts."""
    if args.workers < 1:
        return f"--workers must be at least 1, not {args.workers}"
    if args.lock_timeout < 0:
        return f"--lock-timeout must be 0 (fail at once) or more seconds, not {args.lock_timeout:g}"
    if not args.source.strip():
        return "--source is empty: give a folder, a file, a glob or a URL"
    if Path(args.data).exists() and not Path(args.data).is_dir():
        return f"--data {args.data} is a file, not a folder"
    return None


def answer_without_prefect(args) -> tuple[int, str] | None:
    """(exit status, message) of what needs no run, found in about a second: a missing source, a data folder
    another run still holds after --lock-timeout, nothing new to read. None when there is work to do. An HTTP source
    is left to the flow: its pages are checked by the workers' conditional requests, and its feed is fetched once."""
    from tasks.fetch import HTTP_SCHEMES, scheme_of
    from tasks.sources import list_source, new_files
    from tasks.store import StoreBusy, exclusive, recorded_files, remove_uncommitted

    if scheme_of(args.source) in HTTP_SCHEMES or args.credentials_block:  # a block is read through Prefect's API
        return None
    try:
        with exclusive(args.data, args.lock_timeout):  # waited for here: a busy store is answered before any flow run
            remove_uncommitted(args.data)
            recorded = recorded_files(args.data)
            files = list_source(args.source, recorded)
            new, _, already_recorded = new_files(files, recorded)
    except (FileNotFoundError, ValueError, ImportError, StoreBusy) as error:
        return 1, str(error)
    if not new:
        return 0, nothing_new(len(files), already_recorded, args.source, args.data)
    return None


def nothing_new(files: int, already_recorded: int, source: str, data: str) -> str:
    """The answer of a run that found nothing to read, before or in its run."""
    return f"nothing new: {files} file(s) under {source}, {already_recorded} input(s) already recorded in {data}"


RUN_UNFINISHED = ("Whatever the run had not committed (a run is in the tables only with its row in runs/) is removed "
                  "by the next run: run it again once the server answers.")
EVALUATION_UNFINISHED = "Run it again once the server answers."


API_PLACES = ("the environment; a .env, prefect.toml or pyproject.toml here; or the active profile (`prefect config "
              "set PREFECT_API_URL=...`)")


def failure(error: BaseException, unfinished: str = RUN_UNFINISHED) -> str:
    """A failed flow run's message; a Prefect API that does not answer is said as such, with where it was named
    (Prefect says "Connection refused"), and what became of the unfinished work."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    if isinstance(error, httpx.TransportError) or "Failed to reach API" in str(error):
        return (f"no answer from the Prefect API at {PREFECT_API_URL.value()}, which Prefect's settings name "
                f"({API_PLACES}) ({error}). {unfinished}")
    return str(error)


def start_run() -> None:
    """The command's imports are done: what they built is frozen, out of the collector's walks, which resume."""
    gc.freeze()
    gc.enable()


def show_progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def run_flow(args, console, length) -> int:
    """The run as a flow run on the configured Prefect API."""
    from prefect.exceptions import TerminationSignal

    from flows.digest import digest

    start_run()
    try:
        state = digest(source=args.source, data_dir=args.data, algorithm=args.algorithm, sentences=length.sentences,
                       ratio=length.ratio, words=length.words, language=args.language, batch_size=args.batch_size,
                       min_sentences=args.min_sentences, near_duplicate_threshold=args.near_duplicate_threshold,
                       lock_timeout=args.lock_timeout, workers=args.workers, dask_address=args.dask_address,
                       fetch_timeout=args.fetch_timeout, credentials_block=args.credentials_block,
                       show_progress=show_progress(args), return_state=True)
    except TerminationSignal:  # Prefect's SIGTERM bridge, handed the signal by flows/stopping.py
        raise KeyboardInterrupt from None
    except Exception as error:  # noqa: BLE001 - Prefect could not even start or end the flow run
        tell_error(console, failure(error))
        return 1
    if state.is_failed():
        tell_error(console, failure(state.result(raise_on_failure=False)))
        return 1
    return print_report(state.result(), args, console)


def run_without_prefect(args, console, run_plan) -> int:
    """The run's steps on the worker pool, handed there by threads of this process: no Prefect API is
    configured, and a temporary Prefect server's boot (2 s of its own CPU on 2 cores) would be most of a small
    run's time, for a flow run that no server shows once the command ends."""
    import logging

    from flows.digest_steps import digest_in_threads

    logger = logging.getLogger("seed-digest")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(message)s")
    else:
        logger.setLevel(logging.CRITICAL)  # as Prefect's logs of a flow run are, unless --verbose
    start_run()
    try:
        report = digest_in_threads(run_plan, logger, args.lock_timeout, args.dask_address, args.workers,
                                   show_progress(args))
    except Exception as error:  # noqa: BLE001 - one line, as a failed flow run is told
        tell_error(console, str(error))
        return 1
    return print_report(report, args, console)


def print_report(report, args, console) -> int:
    """What the run did, as a table on standard output ("nothing new" as a message, on `console`)."""
    from rich.console import Console
    from rich.table import Table

    from tasks.fetch import redact

    if report.run_id is None:
        console.print(nothing_new(report.files, report.already_recorded, redact(args.source), args.data),
                      markup=False)
        return 0
    table = Table(title=f"run {report.run_id}")
    columns = ("files", "fetched", "skipped", "already recorded", "inputs", "documents", "duplicates", "rejects",
               "summaries")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*(str(getattr(report, name.replace(" ", "_"))) for name in columns))
    Console().print(table)
    if report.reject_reasons:
        Console().print("rejects by reason: " + ", ".join(f"{k} {v}" for k, v in report.reject_reasons.items()))
    Console().print(f"Parquet tables under {args.data}/ (documents, summaries, duplicates, rejects, runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
