"""`retouch enhance`: the image steps over local files, with a progress bar and one line per failure."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from worker.engine_pool import EnginePool
from worker.errors import RetouchError
from worker.pipeline import Job, Request, image_steps, run_steps
from worker.settings import PolicySettings, load_settings


def enhance_files(args: argparse.Namespace) -> int:
    """Enhance each input into `args.output/<stem>.<ext>`; 0 if all succeed, 1 if any fail."""
    from tqdm import tqdm

    from engines.errors import EngineError

    settings = load_settings()
    request = Request(task=args.task, scale=args.scale, model=args.model, backend=args.backend)
    overrides = {k: v for k, v in (("canvas_aspect", args.canvas), ("canvas_fit", args.fit),
                                   ("look", getattr(args, "look", None))) if v}
    policy = PolicySettings.model_validate({**settings.policy.model_dump(), **overrides})
    if args.mask is not None and len(args.inputs) != 1:
        print("retouch enhance: --mask applies to a single input", file=sys.stderr)
        return 2
    mask_data = args.mask.read_bytes() if args.mask is not None else None
    args.output.mkdir(parents=True, exist_ok=True)
    engines = EnginePool(s3_endpoint_url=settings.storage.s3_endpoint_url)
    failures: list[tuple[Path, str]] = []
    bar = tqdm(total=len(args.inputs), unit="image", file=sys.stderr, dynamic_ncols=True)

    def on_tiles(model: str, done: int, total: int) -> None:
        bar.set_postfix_str(f"{model} tile {done}/{total}")

    try:
        for path in args.inputs:
            bar.set_description(path.name)
            try:
                job = Job(limits=settings.limits, policy=policy, request=request, mask_data=mask_data)
                job.data = _read(path, settings.limits.max_input_bytes)
                run_steps(job, image_steps(engines, on_tiles), deadline=math.inf)
                assert job.encoded is not None and job.extension is not None
                (args.output / f"{path.stem}{job.extension}").write_bytes(job.encoded)
            except RetouchError as error:
                failures.append((path, f"{error.reason}: {error}"))
            except EngineError as error:
                failures.append((path, f"{error.reason}: {error}"))
            bar.update(1)
    finally:
        bar.close()
        engines.close()
    for path, reason in failures:
        print(f"{path}: {reason}")
    return 1 if failures else 0


def _read(path: Path, max_bytes: int) -> bytes:
    from worker.errors import ObjectNotFound, OverLimit

    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise ObjectNotFound("no such file") from error
    if size > max_bytes:
        raise OverLimit(f"{size} bytes is over the {max_bytes}-byte limit")
    return path.read_bytes()
