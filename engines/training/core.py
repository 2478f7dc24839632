"""The trainer core every family's training loop runs on: what a run is, apart from what one step does.

A family's trainer builds its networks, optimizers and data, and hands `TrainingRun.loop` one function,
`step(step, rng) -> {loss part: tensor}`, that does one optimizer step. The core owns the rest, the same
way for every family: the run folder, the learning-rate schedule, a seeded generator per step (so a
resumed run draws what an uninterrupted one would have), resuming from and atomically writing
`last.pt`, the averaged `log.jsonl` records and the validation cadence, and bf16 autocast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

Step = Callable[[int, np.random.Generator], Mapping[str, torch.Tensor]]


def lr_at(step: int, total: int, peak: float, warmup: int = 50, floor: float = 0.01) -> float:
    """Linear warm-up for `warmup` steps, then cosine from `peak` down to `peak * floor` at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def catalogue_folder(args: argparse.Namespace) -> Path | None:
    """The training photos a trainer's command line names: `--data`, else `<--data-dir>/products/train`;
    None, with the error printed, when that folder does not exist."""
    data = args.data or (Path(args.data_dir) / "products" / "train" if args.data_dir else None)
    if data is None or not Path(data).is_dir():
        print(f"error: training data folder {data} does not exist (give --data or --data-dir)", file=sys.stderr)
        return None
    return Path(data)


def deadline_of(args: argparse.Namespace) -> float | None:
    """`--max-minutes` as a `time.time()` deadline for `TrainingRun.loop` (None: run the whole schedule)."""
    minutes = getattr(args, "max_minutes", None)
    return time.time() + 60 * minutes if minutes else None


def autocast(device: str, bf16: bool) -> AbstractContextManager:
    """bfloat16 autocast for forward passes when asked (losses and weights stay float32)."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)


@dataclass
class TrainingRun:
    """One run: `run_dir` holds `last.pt` and `log.jsonl`.

    state: what a checkpoint holds, by name (networks and optimizers: anything with `state_dict`); the
        names are the checkpoint's keys, so runs written before the core existed resume unchanged.
    meta: extra checkpoint entries (recipe, ...).
    total_steps: the schedule's length (validation also runs at its end); `loop(end=...)` may stop earlier.
    """

    run_dir: Path
    seed: int
    state: Mapping[str, object]
    total_steps: int
    log_every: int = 50
    val_every: int = 250
    ckpt_every: int = 250
    meta: Mapping[str, object] = field(default_factory=dict)
    log: Callable[[str], None] = print
    round_to: int | None = None

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint = self.run_dir / "last.pt"

    def resume(self, device: str) -> int:
        """Load `last.pt` into `state` when it exists; returns the step to continue from (0 for a new run)."""
        if not self.checkpoint.exists():
            return 0
        saved = torch.load(self.checkpoint, map_location=device, weights_only=True)
        for name, part in self.state.items():
            part.load_state_dict(saved[name])  # type: ignore[attr-defined]
        start = int(saved["step"])
        self.log(f"resume: from step {start}")
        return start

    def save(self, step: int) -> None:
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save({**{name: part.state_dict() for name, part in self.state.items()},  # type: ignore[attr-defined]
                    "step": step, **self.meta}, tmp)
        tmp.replace(self.checkpoint)  # atomic: an interrupted save never leaves a broken last.pt

    def _number(self, value: float) -> float:
        return round(value, self.round_to) if self.round_to is not None else value

    def loop(self, start: int, end: int, step: Step, *, validate: Callable[[], Mapping[str, float]] | None = None,
             extra: Callable[[], Mapping[str, float]] | None = None, deadline: float | None = None) -> int:
        """Run steps `start` .. `end - 1`, logging averaged loss parts every `log_every` steps and at the end,
        validating every `val_every` steps and at the schedule's end, checkpointing likewise.

        `deadline` (a `time.time()` value) stops the run at the first checkpoint after it, so a borrowed GPU
        or a session's end turns into saved steps; `resume` continues the same schedule. Returns the step
        reached."""
        sums: dict[str, float] = {}
        count, t_last = 0, time.time()
        with (self.run_dir / "log.jsonl").open("a") as logf:
            for index in range(start, end):
                parts = step(index, np.random.default_rng([self.seed, index]))
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach() if hasattr(value, "detach") else value)
                count += 1
                done = index + 1
                if done % self.log_every == 0 or done == end:
                    record: dict[str, float] = {"step": done, **{k: self._number(v / count) for k, v in sums.items()}}
                    record.update(extra() if extra else {})
                    record["s_per_step"] = self._number((time.time() - t_last) / count)
                    if validate is not None and (done % self.val_every == 0 or done == self.total_steps):
                        record.update({k: self._number(v) for k, v in validate().items()})
                    self.log(json.dumps(record))
                    logf.write(json.dumps(record) + "\n")
                    logf.flush()
                    sums, count, t_last = {}, 0, time.time()
                if done % self.ckpt_every == 0 or done == end:
                    self.save(done)
                    if deadline is not None and time.time() > deadline and done != end:
                        self.log(f"deadline: stopped at step {done} of {self.total_steps} (resume continues)")
                        return done
        return end
