"""`seed-digest run`: an ad hoc run of the flow, on a temporary Prefect server of its own unless Prefect's settings
name an API (PREFECT_API_URL: in the environment, a .env, prefect.toml or pyproject.toml, or the active profile),
with a progress bar; `evaluate` (a flow run only with a configured API) and `serve`."""

import argparse
import atexit
import gc
import os
import signal
import sys
from contextlib import nullcontext
from pathlib import Path

from flows.server import ServerFailed, TemporaryServer

# Quiet, offline-friendly Prefect defaults for a terminal run; anything the user set wins.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",  # the first start migrates a new database
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
    run.add_argument("--verbose", action="store_true", help="show Prefect's logs")
    evaluate = commands.add_parser("evaluate", help="ROUGE of the summarizers on a JSON Lines corpus with "
                                                    "reference summaries, beside Lead-3")
    evaluate.add_argument("--corpus", required=True, help="JSON Lines: id, text, reference (one sentence a line)")
    evaluate.add_argument("--data", default="data", help="where the evaluation tables and report go (default: data)")
    evaluate.add_argument("--algorithms", help="comma-separated summarizers (default: all)")
    evaluate.add_argument("--language", help="ISO 639 code (en, de, ...) for every document instead of detecting it")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    evaluate.add_argument("--verbose", action="store_true", help="show Prefect's logs (with a Prefect API "
                                                                 "configured: without, no Prefect server is used)")
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


def temporary_server(show_logs: bool) -> TemporaryServer | None:
    """A temporary Prefect server for this command, held (flows/server.py), booting from now on, unless the
    environment names an API; `server_of_run` releases it or stops it."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = TemporaryServer(show_logs, held=True)
    # At exit Prefect sends its last events and logs: registered before Prefect's own exit handlers, the server
    # stops after them (they run last registered first).
    atexit.register(server.stop)
    return server


def server_of_run(server: TemporaryServer | None) -> TemporaryServer | None:
    """The held temporary server, released, if Prefect has no API configured; else stopped, before it opened
    anything, and None: the run goes to the configured API."""
    if server is None:
        return None
    if configured_api_url():
        server.stop()
        return None
    server.release()
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()  # Prefect's settings, loaded to learn that no API was set, take the server's
    return server


def start_workers(server: TemporaryServer | None, count: int | None, dask_address: str | None = None) -> None:
    """The local worker pool, which imports the stage libraries while the command waits for its server to answer
    (at a lower priority than the server's boot, which is what the command waits for), then the server."""
    from flows.compute import prestart

    prestart(count, dask_address)
    if server is not None:
        # What Prefect's flow call imports as the run starts (0.4 s): FastAPI's encoders for the parameters, the
        # flow engine, the graph visualisation (Graphviz). Loaded during the wait instead of after it.
        import fastapi.encoders  # noqa: F401
        import prefect.flow_engine  # noqa: F401
        import prefect.utilities.visualization  # noqa: F401
        server.wait()


def flow_run_settings(server: TemporaryServer | None):
    """Prefect's settings for the command's flow run. On its temporary server, no heartbeats: they let a server
    that outlives a crashed run mark it crashed, and this one ends with the command; and the run's end waits up
    to a second for the heartbeat thread's sleep."""
    if server is None:
        return nullcontext()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def run_evaluation(args, console) -> int:
    """With a Prefect API configured, the evaluation is a flow run on that server; without, its steps run on the
    worker pool alone (flows/evaluation.py), with no temporary server to wait for."""
    from flows.evaluation import evaluate_on_workers, evaluation_options, pool_size
    from tasks.evaluate import load_corpus

    algorithms = [name.strip() for name in args.algorithms.split(",")] if args.algorithms else None
    try:
        options = evaluation_options(algorithms, args.language, args.resamples)
        if not Path(args.corpus).is_file():
            raise ValueError(f"no corpus file at {args.corpus}")
        documents = load_corpus(args.corpus)  # a bad record is told now, not after the workers start
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    start_workers(None, pool_size(documents.height))  # they import while Prefect's settings load, for the API
    if not configured_api_url():
        try:
            print(evaluate_on_workers(args.corpus, documents, args.data, options))
        except Exception as error:  # noqa: BLE001 - one line, as a failed flow run is told
            console.print(f"[red]error:[/red] {type(error).__name__}: {error}")
            return 1
        return 0
    from flows.evaluate import evaluate

    try:
        state = evaluate(corpus=args.corpus, data_dir=args.data, algorithms=algorithms, language=args.language,
                         resamples=args.resamples, return_state=True)
    except Exception as error:  # noqa: BLE001 - Prefect could not even start or end the flow run
        console.print(f"[red]error:[/red] {failure(error, EVALUATION_UNFINISHED)}")
        return 1
    if state.is_failed():
        console.print(f"[red]error:[/red] {failure(state.result(raise_on_failure=False), EVALUATION_UNFINISHED)}")
        return 1
    print(state.result())
    return 0


def main(argv: list[str] | None = None) -> int:
    # Registered first, so run last: the exit handlers before it (Prefect's last events and logs, the temporary
    # server's stop) have run; what the interpreter's collector would then walk for 0.7 to 1 s, the 200,000 objects
    # of Prefect's and pydantic's models, ends with the process without it.
    atexit.register(gc.freeze)
    args = parser().parse_args(argv)
    if args.command == "run":
        # Until its flow run starts the command mostly imports (Prefect's client, polars): the collector, which
        # would walk their hundreds of thousands of new objects again and again, waits (0.23 of 1.2 s of CPU);
        # run_flow freezes what they built and restarts it; a run that ends before its flow run (bad options,
        # nothing new, a server that failed) gets it back below, for a Python caller's process.
        gc.disable()
    quiet = args.command != "serve" and not args.verbose  # a service keeps Prefect's logs
    for name, value in PREFECT_DEFAULTS.items():
        if quiet or not name.endswith("LOGGING_LEVEL"):
            os.environ.setdefault(name, value)
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)  # a message stays one line, whatever the width
    try:
        return run_command(args, console)
    except ServerFailed as error:
        from rich.markup import escape

        console.print("[red]error:[/red]", escape(str(error)))
        return 1
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
        console.print("stopped: a run stopped before its commit leaves nothing in the tables (the next run "
                      "removes what it had staged)")
        return 130


def run_digest(args, console) -> int:
    """`seed-digest run`: the options checked, what needs no flow run answered, else the flow run."""
    problem = option_problem(args)
    if problem:
        console.print(f"[red]error:[/red] {problem}")
        return 2
    server = temporary_server(args.verbose)  # it boots while we check
    answer = answer_without_prefect(args)
    from flows.plan import plan  # the stage libraries load while the server starts

    try:
        length = plan(args.source, args.data, args.algorithm, args.sentences, args.ratio, args.words, args.language,
                      args.batch_size, args.min_sentences, args.near_duplicate_threshold, args.fetch_timeout).summary
    except ValueError as error:
        console.print(f"[red]error:[/red] {in_flags(str(error))}")
        return 2
    if answer:
        status, message = answer
        console.print(message)
        return status
    signal.signal(signal.SIGTERM, _stop)  # as Ctrl-C: Prefect records the run as crashed, the workers are killed
    return run_flow(args, console, server_of_run(server), length)


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
    """(exit status, message) of what needs no flow run, found in about a second: a missing source, a data folder
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
    except (FileNotFoundError, ValueError, ImportError) as error:
        return 1, f"[red]error:[/red] {error}"
    except StoreBusy as error:
        return 1, f"[red]error:[/red] {error}"
    if not new:
        return 0, (f"nothing new: {len(files)} file(s) under {args.source}, "
                   f"{already_recorded} input(s) already recorded in {args.data}")
    return None


RUN_UNFINISHED = ("Whatever the run had not committed (a run is in the tables only with its row in runs/) is removed "
                  "by the next run: run it again once the server answers.")
EVALUATION_UNFINISHED = "Run it again once the server answers."


def failure(error: BaseException, unfinished: str = RUN_UNFINISHED) -> str:
    """A failed flow run's message; a Prefect API that does not answer is said as such, with where it was named
    (Prefect says "Connection refused"), and what became of the unfinished work."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    if isinstance(error, httpx.TransportError) or "Failed to reach API" in str(error):
        return (f"no answer from the Prefect API at {PREFECT_API_URL.value()}, which Prefect's settings name (the "
                f"environment; a .env, prefect.toml or pyproject.toml here; or the active profile) ({error}). "
                f"{unfinished}")
    return str(error)


def run_flow(args, console, server, length) -> int:
    from prefect.exceptions import TerminationSignal
    from rich.console import Console
    from rich.table import Table

    from flows.digest import digest
    from tasks.fetch import redact

    start_workers(server, args.workers, args.dask_address)
    gc.freeze()
    gc.enable()
    try:
        with flow_run_settings(server):
            state = digest(source=args.source, data_dir=args.data, algorithm=args.algorithm,
                           sentences=length.sentences, ratio=length.ratio, words=length.words,
                           language=args.language, batch_size=args.batch_size, min_sentences=args.min_sentences,
                           near_duplicate_threshold=args.near_duplicate_threshold, lock_timeout=args.lock_timeout,
                           workers=args.workers, dask_address=args.dask_address, fetch_timeout=args.fetch_timeout,
                           credentials_block=args.credentials_block,
                           show_progress=not args.no_progress and sys.stderr.isatty(), return_state=True)
    except TerminationSignal:  # Prefect's SIGTERM bridge, handed the signal by flows/stopping.py
        raise KeyboardInterrupt from None
    except Exception as error:  # noqa: BLE001 - Prefect could not even start or end the flow run
        console.print(f"[red]error:[/red] {failure(error)}")
        return 1
    if state.is_failed():
        console.print(f"[red]error:[/red] {failure(state.result(raise_on_failure=False))}")
        return 1
    report = state.result()
    if report.run_id is None:
        console.print(f"nothing new: {report.files} file(s) under {redact(args.source)}, "
                      f"{report.already_recorded} input(s) already recorded in {args.data}")
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
