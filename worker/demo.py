"""`retouch demo`: the whole loop on one machine with nothing installed beforehand.

moto's server plays S3 + SQS (bucket notifications wired to the queue), the broker is
RETOUCH_BROKER_URL or an embedded SQLite one, the SQS ingester runs in this process and a real
`retouch worker` runs as a child process. Sample photos are uploaded, every output awaited, a table
printed (with each image's engine CPU-seconds and price) and a before/after review page written.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

BUCKET = "listings"
QUEUE = "retouch-uploads"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_object_store() -> tuple[object, str]:
    """moto's S3+SQS server on a free loopback port; returns (server, endpoint URL)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def wire_bucket(endpoint: str, bucket: str, queue: str, prefix: str = "incoming/") -> str:
    """Create the bucket and queue and send the bucket's ObjectCreated events under `prefix` to the queue."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
        }]},
    )
    return queue_url


def run_demo(args: argparse.Namespace) -> int:
    import boto3

    from worker.app import create_app
    from worker.ingest import Enqueuer
    from worker.ingest.sqs import SqsIngester
    from worker.metrics import serve_metrics
    from worker.samples import sample_uploads
    from worker.settings import load_settings, variable

    started = time.monotonic()
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    scratch = Path(tempfile.mkdtemp(prefix="retouch-demo-"))
    server, endpoint = start_object_store()
    queue_url = wire_bucket(endpoint, BUCKET, QUEUE)
    worker_metrics, ingest_metrics = free_port(), free_port()
    # The demo's own storage, and its own embedded broker unless the user named one; the worker child gets
    # the same settings through its environment.
    settings = load_settings()
    broker_url = settings.broker.broker_url or f"sqla+sqlite:///{scratch / 'broker.sqlite'}"
    settings = replace(settings, storage=settings.storage.model_copy(update={"s3_endpoint_url": endpoint}),
                       broker=settings.broker.model_copy(update={"broker_url": broker_url}))
    print(f"object store (moto S3+SQS): {endpoint}  bucket {BUCKET}, queue {QUEUE}")
    print(f"broker: {broker_url}")

    worker_env = {**os.environ, variable("s3_endpoint_url"): endpoint, variable("broker_url"): broker_url,
                  variable("metrics_port"): str(worker_metrics), "PROMETHEUS_MULTIPROC_DIR": str(scratch / "metrics")}
    worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--loglevel", "WARNING"],
                              env=worker_env, stdout=open(scratch / "worker.log", "wb"), stderr=subprocess.STDOUT)
    app = create_app(settings)
    serve_metrics(ingest_metrics, "127.0.0.1", role="ingester")
    ingester = SqsIngester(Enqueuer(app, settings, source="sqs"), queue_url, endpoint_url=endpoint, wait_seconds=1)
    threading.Thread(target=ingester.run, name="sqs-ingester", daemon=True).start()

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    uploads = sample_uploads(args.images)
    for name, payload in uploads:
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{name}", Body=payload, ContentType="image/jpeg")
    print(f"uploaded {len(uploads)} degraded sample photos to s3://{BUCKET}/incoming/; waiting for the worker...")

    manifests = {}
    deadline = time.monotonic() + args.timeout
    try:
        while len(manifests) < len(uploads) and time.monotonic() < deadline and worker.poll() is None:
            for name, _ in uploads:
                if name in manifests:
                    continue
                for key in (f"enhanced/incoming/{name}.manifest.json", f"enhanced/failed/incoming/{name}.json"):
                    try:
                        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                    except s3.exceptions.NoSuchKey:
                        continue
                    manifests[name] = json.loads(body)
            time.sleep(0.5)
        ok = _report(s3, uploads, manifests, args.output, time.monotonic() - started)
        _write_review(settings, args.output / "review.html")
        print(f"\nmetrics: worker http://127.0.0.1:{worker_metrics}/metrics, "
              f"ingester http://127.0.0.1:{ingest_metrics}/metrics")
        print(_scrape_summary(worker_metrics))
        if worker.poll() is not None:
            print(f"the worker exited early; its log: {scratch / 'worker.log'}", file=sys.stderr)
            ok = False
    finally:
        ingester.stop()
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.stop()
    return 0 if ok else 1


def _report(s3, uploads, manifests, output: Path, elapsed: float) -> bool:
    output.mkdir(parents=True, exist_ok=True)
    print(f"\n{'upload':<28} {'input':>11} {'output':>11}  {'engines':<34} {'seconds':>7} {'CPU s':>6} {'price':>10}")
    ok = True
    for name, _ in uploads:
        manifest = manifests.get(name)
        if manifest is None:
            print(f"{name:<28} no output before the timeout")
            ok = False
            continue
        if "reason" in manifest:
            print(f"{name:<28} failed: {manifest['reason']}")
            ok = False
            continue
        source, out = manifest["source"], manifest["output"]
        engines = ", ".join(f"{run['engine']}/{run['backend']}" for run in manifest["engines"]) or "none"
        seconds = sum(manifest["timings_seconds"].values())
        cost = manifest.get("cost", {})
        price = f"${cost['price']['total']:.6f}" if cost.get("price") else "-"
        print(f"{name:<28} {source['width']:>5}x{source['height']:<5} {out['width']:>5}x{out['height']:<5}  "
              f"{engines:<34} {seconds:7.2f} {cost.get('cpu_seconds', 0.0):6.2f} {price:>10}")
        body = s3.get_object(Bucket=out["bucket"], Key=out["key"])["Body"].read()
        (output / Path(out["key"]).name).write_bytes(body)
    timings = [m["timings_seconds"] for m in manifests.values() if "timings_seconds" in m]
    if timings:
        stages = {stage for t in timings for stage in t}
        medians = {stage: statistics.median(t[stage] for t in timings if stage in t) for stage in stages}
        order = sorted(medians, key=lambda stage: list(timings[0]).index(stage) if stage in timings[0] else 99)
        print("per-stage medians: " + ", ".join(f"{stage} {medians[stage]:.3f} s" for stage in order))
    print(f"\n{len(manifests)}/{len(uploads)} done in {elapsed:.1f} s end to end; "
          f"outputs in s3://{BUCKET}/enhanced/incoming/ and downloaded to {output.resolve()}")
    return ok


def _write_review(settings, page: Path) -> None:
    """The before/after page of everything under the output prefix, fetched from the demo's object store."""
    from worker.review import ReviewError, load_s3, write_page
    from worker.storage import S3ObjectStore

    store = S3ObjectStore.from_settings(settings.storage)
    try:
        written = write_page(load_s3(f"s3://{BUCKET}/{settings.storage.output_prefix}", store), page)
    except ReviewError as error:
        print(f"no review page: {error}")
        return
    print(f"review page: {written.resolve()}")


def _scrape_summary(port: int) -> str:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError as error:
        return f"(could not read worker metrics: {error})"
    lines = [line for line in text.splitlines() if line.startswith("retouch_tasks_total")]
    return "\n".join(lines) or "(no task counters yet)"
