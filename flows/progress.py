"""A progress bar over batches per stage, shown for ad hoc runs in a terminal and silent otherwise."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class BatchProgress:
    def __init__(self, enabled: bool):
        self._bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("batches"), TimeElapsedColumn(), transient=False) if enabled else None
        self._stages: dict[str, int] = {}

    def __enter__(self):
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc_info):
        if self._bar is not None:
            self._bar.stop()

    def stage(self, name: str, total: int) -> None:
        if self._bar is not None:
            self._stages[name] = self._bar.add_task(name, total=total)

    def advance(self, name: str) -> None:
        if self._bar is not None:
            self._bar.advance(self._stages[name])
