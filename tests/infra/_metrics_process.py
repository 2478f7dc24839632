"""A stand-in worker or ingester: serves `get_metrics()` through `serve_metrics` and does small "jobs".

    python -m tests.infra._metrics_process --port N --role worker [--jobs-per-second 4] [--seconds 60]

Each job records what one enhanced image records (tests.infra._exposition.exercise). It exits by
itself after --seconds, so a test that dies cannot leave it running.
"""

from __future__ import annotations

import argparse
import random
import time

from tests.infra._exposition import exercise
from worker.metrics import get_metrics, serve_metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--role", choices=["worker", "ingester"], required=True)
    parser.add_argument("--jobs-per-second", type=float, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    serve_metrics(args.port, "127.0.0.1", role=args.role)
    rng = random.Random(0)
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        exercise(get_metrics(), scale=rng.uniform(0.5, 1.5))
        time.sleep(1 / args.jobs_per_second)


if __name__ == "__main__":
    main()
