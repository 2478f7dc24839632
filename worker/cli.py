"""`retouch` command line: demo, worker, ingesters, local enhancement, and the engines' tools."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path


def _ensure_multiprocess_metrics_dir() -> None:
    """Give prometheus_client's multiprocess mode a fresh folder before anything imports it."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # left by an earlier run: its counters would be summed in
            stale.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="retouch-metrics-")


def _has_gpu() -> bool:
    # Asking torch would initialise CUDA in the parent before the pool forks; nvidia-smi does not.
    return shutil.which("nvidia-smi") is not None and os.environ.get("CUDA_VISIBLE_DEVICES", "0") != ""


def pool_layout(pool: str | None, concurrency: int | None, threads: int | None, gpu: bool,
                cores: int) -> tuple[str, int, int]:
    """(pool, processes, compute threads per process; 0 = the runtimes' own default) for `retouch worker`.

    One process per GPU (run one worker per GPU). On CPU one pool process per core, one thread each:
    measured with infra/bench/throughput.sh on 640 px listing photos (2-core AMD EPYC), 2 processes x 1
    thread gave 0.687 images/s and 1 x 2 gave 0.610 (+12 %; an image's tiles do not keep two threads busy
    all the time). Each process holds its own engines: pass --concurrency where memory is short; the
    threads then default to the cores each process can have.
    """
    pool = pool or ("solo" if gpu else "prefork")
    concurrency = concurrency or (1 if gpu else cores)
    threads = threads or (0 if gpu else max(1, cores // concurrency))
    return pool, concurrency, threads


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _threads_per_process(threads: int) -> None:
    """Every pool process computes with `threads` threads: torch and ONNX Runtime (set in each child, since
    torch may already be imported in the parent when the pool forks)."""
    from celery.signals import worker_process_init

    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("RETOUCH_ORT_THREADS", str(threads))

    def pin(**_: object) -> None:
        import torch

        torch.set_num_threads(threads)

    worker_process_init.connect(pin, weak=False)


def cmd_worker(args: argparse.Namespace) -> int:
    _ensure_multiprocess_metrics_dir()
    pool, concurrency, threads = pool_layout(args.pool, args.concurrency, args.threads, _has_gpu(), _cpu_count())
    if threads:
        _threads_per_process(threads)  # before any settings are read: the pool inherits them
    from celery.signals import worker_process_shutdown

    from worker.app import create_app
    from worker.metrics import mark_process_dead, serve_metrics
    from worker.settings import load_settings

    settings = load_settings()
    app = create_app(settings)
    port = settings.metrics.metrics_port if args.metrics_port is None else args.metrics_port
    serve_metrics(port, settings.metrics.metrics_addr, role="worker")

    def on_child_exit(pid: int | None = None, **_: object) -> None:
        mark_process_dead(pid or os.getpid())

    worker_process_shutdown.connect(on_child_exit, weak=False)
    argv = [
        "worker", f"--loglevel={args.loglevel}", f"--pool={pool}", f"--concurrency={concurrency}",
        "--queues", settings.broker.queue, "--hostname", f"retouch-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    app.worker_main(argv)
    return 0


def _ingest_app():
    from worker.app import create_app
    from worker.settings import load_settings

    settings = load_settings()
    return settings, create_app(settings)


def cmd_ingest_sqs(args: argparse.Namespace) -> int:
    from worker.ingest import Enqueuer
    from worker.ingest.sqs import SqsIngester
    from worker.metrics import serve_metrics

    settings, app = _ingest_app()
    queue_url = args.queue_url or settings.ingest.sqs_queue_url
    if not queue_url:
        print("retouch ingest sqs: give --queue-url or set RETOUCH_SQS_QUEUE_URL", file=sys.stderr)
        return 2
    serve_metrics(args.metrics_port, settings.metrics.metrics_addr, role="ingester")
    ingester = SqsIngester(Enqueuer(app, settings, source="sqs"), queue_url,
                           endpoint_url=settings.storage.s3_endpoint_url, region=settings.storage.s3_region,
                           wait_seconds=settings.ingest.sqs_wait_seconds)
    try:
        ingester.run()
    except KeyboardInterrupt:
        ingester.stop()
    return 0


def cmd_ingest_webhook(args: argparse.Namespace) -> int:
    from worker.ingest import Enqueuer
    from worker.ingest.webhook import WebhookServer
    from worker.metrics import serve_metrics

    settings, app = _ingest_app()
    secret = settings.ingest.webhook_secret
    if not secret:
        print("retouch ingest webhook: set RETOUCH_WEBHOOK_SECRET (the shared secret senders present)",
              file=sys.stderr)
        return 2
    serve_metrics(args.metrics_port, settings.metrics.metrics_addr, role="ingester")
    server = WebhookServer(Enqueuer(app, settings, source="webhook"), secret, host=args.host, port=args.port)
    logging.getLogger(__name__).info("webhook listening on %s:%d", args.host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_ingest_amqp(args: argparse.Namespace) -> int:
    from worker.ingest import Enqueuer
    from worker.ingest.amqp import AmqpIngester
    from worker.metrics import serve_metrics

    settings, app = _ingest_app()
    ingest = settings.ingest
    url = args.url or ingest.amqp_url
    if not url:
        print("retouch ingest amqp: give --url or set RETOUCH_AMQP_URL", file=sys.stderr)
        return 2
    serve_metrics(args.metrics_port, settings.metrics.metrics_addr, role="ingester")
    ingester = AmqpIngester(Enqueuer(app, settings, source="amqp"), url,
                            exchange=args.exchange or ingest.amqp_exchange,
                            routing_key=args.routing_key or ingest.amqp_routing_key,
                            queue=args.queue or ingest.amqp_queue)
    try:
        ingester.run()
    except KeyboardInterrupt:
        ingester.stop()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from worker.replay import replay_dead_letter_queue, replay_failure_records
    from worker.storage import S3ObjectStore

    settings, app = _ingest_app()
    reasons = args.reason or None
    if args.from_queue:
        summary = replay_dead_letter_queue(app, settings, reasons=reasons, dry_run=args.dry_run, limit=args.limit)
    else:
        store = S3ObjectStore.from_settings(settings.storage)
        summary = replay_failure_records(app, settings, store, args.bucket, prefix=args.prefix, reasons=reasons,
                                         dry_run=args.dry_run)
    for line in summary.lines():
        print(line)
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {len(summary.enqueued)} upload(s), left {len(summary.skipped)}")
    return 0


def cmd_enhance(args: argparse.Namespace) -> int:
    from worker.local import enhance_files

    return enhance_files(args)


def cmd_look_fit(args: argparse.Namespace) -> int:
    from worker.look_fit import fit_from_files

    return fit_from_files(args.references, args.output, name=args.name or args.output.stem, model=args.model)


def cmd_review(args: argparse.Namespace) -> int:
    from worker.review import ReviewError, load, write_page

    def s3_store():
        from worker.settings import load_settings
        from worker.storage import S3ObjectStore

        return S3ObjectStore.from_settings(load_settings().storage)

    try:
        review = load(args.source, s3_store)
    except ReviewError as error:
        print(f"retouch review: {error}", file=sys.stderr)
        return 2
    page = write_page(review, args.output, images_beside=args.images_beside)
    print(f"review page: {page.resolve()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from worker.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    from engines.commands import register as register_engine_commands
    from engines.training.commands import register as register_training_commands

    parser = argparse.ArgumentParser(prog="retouch", description=__doc__)
    parser.add_argument("--log-level", default=None, help="default RETOUCH_LOG_LEVEL, else INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole loop locally: S3+SQS server, broker, ingester, worker")
    demo.add_argument("--images", type=int, default=4, help="how many sample photos to upload")
    demo.add_argument("--timeout", type=float, default=900, help="seconds to wait for every output")
    demo.add_argument("--output", type=Path, default=Path("retouch-demo-output"),
                      help="folder the enhanced images are downloaded to")
    demo.set_defaults(func=cmd_demo)

    worker = sub.add_parser("worker", help="start a Celery worker (RETOUCH_BROKER_URL)")
    worker.add_argument("--concurrency", type=int, default=None,
                        help="pool processes (default: one per core on CPU, 1 with a GPU)")
    worker.add_argument("--threads", type=int, default=None,
                        help="compute threads per pool process (default: cores / processes on CPU)")
    worker.add_argument("--pool", choices=["prefork", "solo", "threads"], default=None)
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--metrics-port", type=int, default=None, help="default RETOUCH_METRICS_PORT")
    worker.set_defaults(func=cmd_worker)

    ingest = sub.add_parser("ingest", help="turn bucket notifications into tasks")
    from worker.settings import MetricsSettings

    # The ingester's /metrics: RETOUCH_METRICS_PORT when set (its validation is load_settings' job), else 9109.
    try:
        metrics = MetricsSettings()
        ingest_metrics_port = metrics.metrics_port if "metrics_port" in metrics.model_fields_set else 9109
    except ValueError:
        ingest_metrics_port = 9109
    metrics_help = "port of the ingester's /metrics (default RETOUCH_METRICS_PORT, else 9109)"
    ingest_sub = ingest.add_subparsers(dest="source", required=True)
    sqs = ingest_sub.add_parser("sqs", help="long-poll an SQS queue of S3 notifications")
    sqs.add_argument("--queue-url", default=None)
    sqs.add_argument("--metrics-port", type=int, default=ingest_metrics_port, help=metrics_help)
    sqs.set_defaults(func=cmd_ingest_sqs)
    webhook = ingest_sub.add_parser("webhook", help="receive MinIO / Ceph RGW notifications over HTTP")
    webhook.add_argument("--port", type=int, default=8080)
    webhook.add_argument("--host", default="0.0.0.0")
    webhook.add_argument("--metrics-port", type=int, default=ingest_metrics_port, help=metrics_help)
    webhook.set_defaults(func=cmd_ingest_webhook)

    amqp = ingest_sub.add_parser("amqp", help="consume RGW / MinIO notifications published to RabbitMQ")
    amqp.add_argument("--url", default=None, help="default RETOUCH_AMQP_URL")
    amqp.add_argument("--exchange", default=None, help="default RETOUCH_AMQP_EXCHANGE")
    amqp.add_argument("--routing-key", default=None, help="default RETOUCH_AMQP_ROUTING_KEY")
    amqp.add_argument("--queue", default=None, help="default RETOUCH_AMQP_QUEUE")
    amqp.add_argument("--metrics-port", type=int, default=ingest_metrics_port, help=metrics_help)
    amqp.set_defaults(func=cmd_ingest_amqp)

    replay = sub.add_parser("replay", help="re-enqueue dead-lettered uploads (from failure records or the queue)")
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("--bucket", help="replay the failure records under <output prefix>failed/ in this bucket")
    source.add_argument("--from-queue", action="store_true", help="drain RETOUCH_DEAD_LETTER_QUEUE instead")
    replay.add_argument("--prefix", default="", help="only failure records of source keys under this prefix")
    replay.add_argument("--reason", action="append", default=[],
                        help="only uploads that failed for this reason (repeatable), e.g. storage_unavailable")
    replay.add_argument("--limit", type=int, default=None, help="--from-queue: at most this many")
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    replay.set_defaults(func=cmd_replay)

    enhance = sub.add_parser("enhance", help="enhance local image files")
    enhance.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    enhance.add_argument("--output", "-o", type=Path, required=True, help="folder for DIR/<stem>.<ext>")
    enhance.add_argument("--task", choices=["auto", "super_resolution", "denoise", "tone"], default="auto",
                         help="tone: correct light and colour only; auto: what the analysis finds, gated")
    enhance.add_argument("--scale", type=int, choices=[2, 4], default=None)
    enhance.add_argument("--model", default=None, help="registry id, weights path or s3:// URI")
    enhance.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "tensorrt"], default=None)
    enhance.add_argument("--canvas", default=None, metavar="W:H", help="fit to this canvas aspect, e.g. 1:1")
    enhance.add_argument("--fit", choices=["outpaint", "pad", "blur"], default=None, help="how canvas bands are filled")
    enhance.add_argument("--mask", type=Path, default=None, help="mask PNG (white = inpaint); one input only")
    enhance.add_argument("--look", default=None, metavar="NAME|PATH",
                         help="look after the tone correction: neutral, bright, or a look JSON (`retouch look fit`)")
    enhance.add_argument("--background", choices=["keep", "white", "transparent"], default=None,
                         help="put the product on white or cut it out (PNG with alpha); default: the policy's "
                         "(RETOUCH_BACKGROUND, keep)")
    enhance.add_argument("--review", action="store_true", help="also write DIR/review.html (before/after page)")
    enhance.set_defaults(func=cmd_enhance)

    look = sub.add_parser("look", help="looks: a shop's style, fitted from its reference photos")
    look_sub = look.add_subparsers(dest="look_command", required=True)
    fit = look_sub.add_parser("fit", help="fit a look from reference photos (their style relative to neutral)")
    fit.add_argument("references", nargs="+", type=Path, metavar="REFERENCE")
    fit.add_argument("--output", "-o", type=Path, required=True, help="the look JSON to write")
    fit.add_argument("--name", default=None, help="the look's name (default: the output file's stem)")
    fit.add_argument("--model", default=None, help="tone engine making the references neutral (default built-in)")
    fit.set_defaults(func=cmd_look_fit)

    review = sub.add_parser("review", help="write a before/after HTML page for enhanced photos and their manifests")
    review.add_argument("source", metavar="SOURCE",
                        help="a folder written by `retouch enhance`, or s3://bucket/prefix/ of outputs and manifests")
    review.add_argument("--output", "-o", type=Path, required=True, help="the page to write, e.g. review.html")
    review.add_argument("--images-beside", action="store_true",
                        help="write images to <page>_files/ beside the page instead of inlining them")
    review.set_defaults(func=cmd_review)

    register_engine_commands(sub)
    register_training_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is None:
        from worker.settings import MetricsSettings

        try:
            args.log_level = MetricsSettings().log_level
        except ValueError:  # reported with every other bad variable by load_settings
            args.log_level = "INFO"
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("onnxscript", "onnx_ir", "torch.onnx", "botocore", "urllib3", "werkzeug"):
        # Their INFO lines (graph passes, HTTP requests) drown the worker's own; warnings still show.
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    from engines.training.extras import MissingTrainingDependency
    from worker.settings import SettingsError

    try:
        return int(args.func(args) or 0)
    except (SettingsError, MissingTrainingDependency) as error:
        print(f"retouch: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
