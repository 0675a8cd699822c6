"""Batch task caching keyed on content, so a retried flow run does not redo the batches it already finished.

A batch's key is its task's source code plus a fingerprint of its arguments: the input_ids of a frame (which hash
each input's path, record and bytes), the path, size and modification time of seed files, and the options.
Results live under data/.cache for the length of a run: the flow deletes them once the run has committed.
"""

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import polars as pl
from prefect.cache_policies import TASK_SOURCE, CacheKeyFnPolicy
from prefect.filesystems import LocalFileSystem

CACHE_FOLDER = ".cache"


def fingerprint(value) -> str:
    """A stable text for a task argument: the same content gives the same text in any process."""
    if isinstance(value, pl.DataFrame):
        column = "input_id" if "input_id" in value.columns else None
        if column is None:
            raise TypeError(f"cannot fingerprint a frame without input_id: {value.columns}")
        return "frame[" + ",".join(value[column].to_list()) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{fingerprint(k)}:{fingerprint(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(fingerprint(item) for item in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fingerprint(item) for item in value) + "]"
    if dataclasses.is_dataclass(value) and hasattr(value, "path") and hasattr(value, "relative"):
        stat = os.stat(value.path)
        return f"file({value.path}:{stat.st_size}:{stat.st_mtime_ns})"
    return repr(value)


def _content_key(context, parameters: dict) -> str:
    text = ";".join(f"{name}={fingerprint(value)}" for name, value in sorted(parameters.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_folder(data_dir: str | Path) -> Path:
    return Path(data_dir, CACHE_FOLDER).resolve()


class BatchCache:
    """Gives batch tasks a content-keyed cache whose records and results are kept in data/.cache."""

    def __init__(self, data_dir: str | Path):
        self.folder = cache_folder(data_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = "seed-digest-cache-" + hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
        storage = LocalFileSystem(basepath=str(self.folder / "results"))
        storage.save(name, overwrite=True)  # Prefect persists results only to storage the server knows
        self.storage = LocalFileSystem.load(name)
        self.policy = (CacheKeyFnPolicy(cache_key_fn=_content_key) + TASK_SOURCE).configure(
            key_storage=str(self.folder / "keys"))

    def __call__(self, task):
        return task.with_options(cache_policy=self.policy, result_storage=self.storage, persist_result=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
