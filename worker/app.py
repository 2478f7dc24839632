"""The Celery application, built by a factory (no app exists until someone asks for one)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from worker.settings import Settings, load_settings

ENHANCE_TASK = "retouch.enhance_object"
DEAD_LETTER_TASK = "retouch.dead_letter"


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app wired for at-least-once delivery of long, idempotent image tasks."""
    from worker.tasks import register_tasks

    settings = settings or load_settings()
    broker = settings.broker
    deadline = settings.limits.task_deadline_seconds
    url = broker.resolved_broker_url()
    app = Celery("retouch", broker=url, set_as_current=False)
    transport_options: dict = {}
    if url.startswith(("redis", "rediss", "sqs")):
        # These redeliver an un-acked message once its visibility timeout passes. The timeout is a short lease
        # that each live worker renews for the messages it holds (worker.leases), so a long task is never
        # redelivered while its worker lives, and a killed worker's task is within lease + sweep seconds.
        transport_options["visibility_timeout"] = broker.lease_seconds
    if url.startswith(("redis", "rediss")):
        # kombu sweeps for expired leases every interval * throttle seconds (default 10 x 10): make it 10 s.
        transport_options.update(unacked_restore_interval=10, unacked_restore_throttle=1)
    if url.startswith(("amqp", "pyamqp")):
        # Publisher confirms: send_task returns only once RabbitMQ has the message, so an ingester acks its
        # event only after the task is durably enqueued.
        transport_options["confirm_publish"] = True
    app.conf.update(
        # At-least-once: ack after the task ran, requeue when the pool process dies mid-task.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One image at a time per process: a prefetched message would wait behind a long upscale.
        worker_prefetch_multiplier=1,
        task_default_queue=broker.queue,
        task_queues=[Queue(broker.queue), Queue(broker.dead_letter_queue)],
        task_routes={DEAD_LETTER_TASK: {"queue": broker.dead_letter_queue}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options=transport_options,
        # Backstops beyond the pipeline's own deadline check (which runs between steps).
        task_soft_time_limit=deadline + 60,
        task_time_limit=deadline + 120,
        broker_connection_retry_on_startup=True,
        # AMQP: a lost node (no FIN) is noticed, and its unacked messages requeued, after ~2 heartbeats.
        broker_heartbeat=30,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    register_tasks(app, settings)
    from worker.leases import LeaseRenewal

    app.steps["consumer"].add(LeaseRenewal)
    return app
