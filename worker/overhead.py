"""What a photo costs besides its engines, read from the manifests `retouch enhance` writes.

Every manifest has the pipeline's step timings (`timings_seconds`: check_limits, decode, analyse, plan,
enhance, encode...) and each engine call's own seconds (`engines[].seconds`, inside the enhance step).
The pipeline's overhead for a photo is everything but the engines: decoding, analysis, resampling,
compositing, encoding and the bookkeeping between them.

    python -m worker.overhead OUT_DIR [--skip-first] [--json]

`--skip-first` leaves out each process's first photo (its engines load and export then), so the figures
are a warm worker's. `infra/bench/throughput.sh` uses the same summary for processes x threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class PhotoCost:
    name: str
    seconds: float  # all steps
    engine_seconds: float
    overhead_seconds: float

    @property
    def overhead_share(self) -> float:
        """Overhead over engine time (the issue's measure): 0.1 = 10 % on top of the engines."""
        return self.overhead_seconds / self.engine_seconds if self.engine_seconds else float("inf")


def photo_cost(manifest: dict, name: str) -> PhotoCost:
    total = sum(float(v) for v in manifest.get("timings_seconds", {}).values())
    engines = sum(float(run["seconds"]) for run in manifest.get("engines", []))
    return PhotoCost(name, total, engines, max(0.0, total - engines))


def read_costs(folder: Path, skip_first: bool = False) -> list[PhotoCost]:
    """Costs of every `*.manifest.json` under `folder`, oldest first; with `skip_first`, each
    sub-folder's (one per process) first photo is left out."""
    costs: list[PhotoCost] = []
    for directory in sorted({p.parent for p in folder.rglob("*.manifest.json")}):
        files = sorted(directory.glob("*.manifest.json"), key=lambda p: p.stat().st_mtime)
        for i, path in enumerate(files):
            if skip_first and i == 0:
                continue
            costs.append(photo_cost(json.loads(path.read_text()), path.name.removesuffix(".manifest.json")))
    return costs


def summary(costs: list[PhotoCost]) -> dict:
    if not costs:
        return {"photos": 0}
    engines = sum(c.engine_seconds for c in costs)
    overhead = sum(c.overhead_seconds for c in costs)
    return {"photos": len(costs), "median_seconds": round(statistics.median(c.seconds for c in costs), 4),
            "median_engine_seconds": round(statistics.median(c.engine_seconds for c in costs), 4),
            "median_overhead_seconds": round(statistics.median(c.overhead_seconds for c in costs), 4),
            "overhead_share_of_engines": round(overhead / engines, 4) if engines else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.overhead", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--skip-first", action="store_true", help="leave out each process's first (cold) photo")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    costs = read_costs(args.folder, args.skip_first)
    result = summary(costs)
    if args.json:
        print(json.dumps({"summary": result, "photos": [asdict(c) for c in costs]}, indent=1))
        return 0 if costs else 1
    for c in costs:
        print(f"{c.name:40s} {c.seconds:8.3f} s  engines {c.engine_seconds:8.3f} s  "
              f"overhead {c.overhead_seconds:6.3f} s ({100 * c.overhead_share:.1f} % of engines)")
    print(json.dumps(result))
    return 0 if costs else 1


if __name__ == "__main__":
    sys.exit(main())
