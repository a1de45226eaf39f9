"""Embedded runner: one SongMaker in this process, jobs one after another, each failure retried once.

Jobs are not merged into shared LM batches: one generator per batch means songs sampled together
draw from one random stream, so merging jobs would make a job's song depend on its neighbours in the
file (and differ from running it alone, on Ray, or after a resume). A job that wants several songs
of one prompt in one batch asks for it with ``batch``; benchmarks/RESULTS.md has what that buys.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .jobs import Job
from .worker import Outcome, SongMaker, WorkerSpec, describe_error

TRIES = 2  # a failed job is retried once


class LocalRunner:
    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.maker: SongMaker | None = None

    def start(self) -> list[str]:
        self.maker = SongMaker(self.spec)
        return [self.maker.describe()]

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        for job in jobs:
            for attempt in range(1, TRIES + 1):
                try:
                    result = self.maker.make(job)
                except Exception as exc:  # noqa: BLE001 - reported with the job, then retried once
                    _free_device_memory()
                    yield Outcome(job, attempt, error=describe_error(exc), final=attempt == TRIES)
                    continue
                yield Outcome(job, attempt, result=result)
                break

    def close(self) -> None:
        self.maker = None


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
