"""`retouch enhance`: the image steps over local files, with a progress bar and one line per failure.

Beside each output `<stem>.<ext>` it writes `<stem>.manifest.json` (the object pipeline's manifest, with
paths instead of keys), or `<stem>.failed.json` with the reason: the folder is what `retouch review` reads.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

from worker import PIPELINE_VERSION
from worker.engine_pool import EnginePool
from worker.errors import RetouchError
from worker.pipeline import Job, Request, image_steps, run_steps
from worker.pipeline.manifest import job_manifest
from worker.settings import CostSettings, PolicySettings, load_settings


def enhance_files(args: argparse.Namespace) -> int:
    """Enhance each input into `args.output/<stem>.<ext>`; 0 if all succeed, 1 if any fail."""
    from tqdm import tqdm

    from engines.errors import EngineError

    settings = load_settings()
    request = Request(task=args.task, scale=args.scale, model=args.model, backend=args.backend,
                      background=getattr(args, "background", None))
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
                write_output(args.output, path, job, settings.cost)
            except (RetouchError, EngineError) as error:
                failures.append((path, f"{error.reason}: {error}"))
                write_failure(args.output, path, error.reason, str(error))
            bar.update(1)
    finally:
        bar.close()
        engines.close()
    for path, reason in failures:
        print(f"{path}: {reason}")
    if getattr(args, "review", False):
        from worker.review import write_review_page

        page = write_review_page(args.output, args.output / "review.html")
        print(f"review page: {page.resolve()}")
    return 1 if failures else 0


def write_output(folder: Path, source: Path, job: Job, prices: CostSettings) -> Path:
    """`<stem>.<ext>` then `<stem>.manifest.json` (image first, as in the object pipeline); drops a stale
    failure record, so at rest each input has an output with its manifest or a failure record."""
    assert job.encoded is not None and job.extension is not None
    image = folder / f"{source.stem}{job.extension}"
    image.write_bytes(job.encoded)
    manifest = job_manifest(job, source={"path": str(source.resolve())}, output={"path": image.name},
                            prices=prices)
    (folder / f"{source.stem}.manifest.json").write_text(json.dumps(manifest, indent=2))
    (folder / f"{source.stem}.failed.json").unlink(missing_ok=True)
    return image


def write_failure(folder: Path, source: Path, reason: str, message: str) -> Path:
    """`<stem>.failed.json`, shaped like the object pipeline's failure record; drops a stale manifest."""
    record = folder / f"{source.stem}.failed.json"
    body = {"pipeline_version": PIPELINE_VERSION, "source": {"path": str(source.resolve())}, "reason": reason,
            "message": message, "failed_at": datetime.now(UTC).isoformat()}
    record.write_text(json.dumps(body, indent=2))
    (folder / f"{source.stem}.manifest.json").unlink(missing_ok=True)
    return record


def _read(path: Path, max_bytes: int) -> bytes:
    from worker.errors import ObjectNotFound, OverLimit

    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise ObjectNotFound("no such file") from error
    if size > max_bytes:
        raise OverLimit(f"{size} bytes is over the {max_bytes}-byte limit")
    return path.read_bytes()
