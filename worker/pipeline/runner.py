"""Run named steps in order, timing each and checking the deadline between them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from worker.errors import DeadlineExceeded
from worker.pipeline.job import Job


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Job], None]


# Called after every step with (step name, seconds); the worker's metrics hook plugs in here.
StepObserver = Callable[[str, float], None]


def run_steps(job: Job, steps: Sequence[Step], *, deadline: float, observe: StepObserver | None = None) -> Job:
    """Run `steps` over `job` until the last one or until a step marks the job done.

    `deadline` is a `time.monotonic()` instant. It is checked before each step, not inside one: a step
    that is already running is allowed to finish, so no output is ever half-written by the deadline.
    """
    for step in steps:
        if job.done:
            break
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"deadline passed before step {step.name!r}")
        started = time.perf_counter()
        try:
            step.run(job)
        finally:
            seconds = time.perf_counter() - started
            job.timings[step.name] = seconds
            if observe is not None:
                observe(step.name, seconds)
    return job
