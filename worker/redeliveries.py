"""Poison messages: a task that keeps killing its worker is dead-lettered instead of redelivered forever.

When a worker dies mid-task (the OOM killer, a segfault in a native library, a lost node), the broker
hands the message out again, flagged `redelivered`. Nothing in the message can count the deaths (it is
requeued unchanged), so the count lives beside the outputs, in the object store that every worker
shares whatever the broker: `<output prefix>inflight/<task id>.json`, written only on redelivered
starts and removed when the task ends normally. First deliveries, nearly all of them, cost nothing.

A redelivery for another cause (a broker restart, a lost ack) counts once too and is cleared when the
task then ends; only consecutive deaths reach `RETOUCH_MAX_WORKER_LOST`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from worker.errors import ObjectNotFound
from worker.events import ObjectCreated
from worker.settings import StorageSettings
from worker.storage import ObjectStore

log = logging.getLogger(__name__)


class DeathLedger:
    def __init__(self, store: ObjectStore, storage: StorageSettings) -> None:
        self._store = store
        self._storage = storage

    def _where(self, record: ObjectCreated, task_id: str) -> tuple[str, str]:
        return self._storage.output_bucket or record.bucket, f"{self._storage.output_prefix}inflight/{task_id}.json"

    def record_redelivery(self, record: ObjectCreated, task_id: str) -> int:
        """Count one more death of the worker running this task; returns the deaths so far."""
        bucket, key = self._where(record, task_id)
        try:
            deaths = int(json.loads(self._store.get(bucket, key, max_bytes=4096).data)["deaths"])
        except ObjectNotFound:
            deaths = 0
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable death ledger %s/%s; counting from zero", bucket, key)
            deaths = 0
        deaths += 1
        body = {"task_id": task_id, "source": record.to_message(), "deaths": deaths,
                "updated_at": datetime.now(UTC).isoformat()}
        self._store.put(bucket, key, json.dumps(body).encode(), content_type="application/json")
        return deaths

    def clear(self, record: ObjectCreated, task_id: str) -> None:
        """The task ended on its own (success, failure or a scheduled retry): forget its deaths."""
        bucket, key = self._where(record, task_id)
        try:
            self._store.delete(bucket, key)
        except Exception as error:  # a stale entry only counts once more, on a later redelivery
            log.warning("could not clear the death ledger %s/%s: %s", bucket, key, error)
