"""boto3's per-call retries, with a retry budget that cannot run dry for good, and counted.

botocore's `standard` retry mode spends a client-wide budget of 500 tokens: 14 per retried 5xx or dropped
connection, 5 per throttle, and refunds only 1 per *successful* (2xx) response. Under a long fault the
budget drains and then nothing is retried at all; the pipeline's 404 HEADs (dedupe, sidecar lookup)
refund nothing, so it may never refill (seen: RetryQuotaReached after ~200 requests at a 30 % fault rate).

The budget is a good idea (a full outage should fail fast and leave the waiting to the task's backoff,
not multiply load on a sick endpoint), so it stays, with two changes: it also refills with time, at
`refill_per_second` tokens, and a 404 (an expected answer) refunds like a success. A dead endpoint still
gets few retries; a flaky one keeps getting some. Refunds alone break even at about 7 % faults
(1 token per success against 14 per fault).
The task-level retry horizon (`worker.tasks`) then covers what the client gives up on.

Every retry the client decides on, and every one the budget refuses, is counted in
`retouch_storage_retries_total{operation, reason}` / `retouch_storage_retry_budget_exhausted_total`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from botocore.retries import quota, standard

# Called with (operation, reason) for every retry botocore schedules; reason "budget_exhausted" when refused.
RetryObserver = Callable[[str, str], None]


class RefillingRetryQuota(quota.RetryQuota):
    """botocore's retry budget, plus a steady refill over time (a token bucket)."""

    def __init__(self, capacity: int = 500, refill_per_second: float = 5.0, clock=time.monotonic) -> None:
        super().__init__(initial_capacity=capacity, lock=threading.Lock())
        self._refill_per_second = refill_per_second
        self._clock = clock
        self._refilled_at = clock()

    def _refill(self) -> None:
        now = self._clock()
        earned = (now - self._refilled_at) * self._refill_per_second
        if earned >= 1:
            self._refilled_at = now
            self.release(int(earned))

    def acquire(self, capacity_amount: int) -> bool:
        self._refill()
        return super().acquire(capacity_amount)


def failure_reason(context: standard.RetryContext) -> str:
    """A low-cardinality name for what a failed attempt met."""
    if context.caught_exception is not None:
        return "timeout" if "Timeout" in type(context.caught_exception).__name__ else "connection_error"
    code = str((context.parsed_response or {}).get("Error", {}).get("Code", ""))
    status = getattr(context.http_response, "status_code", 0) or 0
    if code in {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"} or status == 429:
        return "throttled"
    return f"http_{status}" if status >= 500 else "other"


class _ObservedQuotaChecker(standard.RetryQuotaChecker):
    """Called exactly when botocore's policy wants a retry: the one place to count retries and refusals."""

    def __init__(self, budget, throttling, observe: RetryObserver) -> None:
        super().__init__(budget, throttling)
        self._observe = observe

    def acquire_retry_quota(self, context) -> bool:
        granted = super().acquire_retry_quota(context)
        operation = getattr(context.operation_model, "name", "unknown")
        self._observe(operation, failure_reason(context) if granted else "budget_exhausted")
        return granted

    def release_retry_quota(self, context, http_response, **kwargs) -> None:
        # A 404 is the endpoint answering correctly (the dedupe and sidecar HEADs expect it): refund it
        # like a success, which botocore does only for 2xx.
        if http_response is not None and http_response.status_code == 404:
            self._quota.release(self._NO_RETRY_INCREMENT)
            return
        super().release_retry_quota(context, http_response, **kwargs)


def install_retry_policy(client, *, max_attempts: int, budget: int = 500, refill_per_second: float = 5.0,
                         observe: RetryObserver | None = None) -> RefillingRetryQuota:
    """Replace `client`'s standard-mode retry handler by one with a refilling budget that reports retries.

    The client must have been created with `Config(retries={"mode": "standard", ...})`.
    """
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
    adapter = standard.RetryEventAdapter()
    throttling = standard.ThrottlingErrorDetector(adapter)
    budget_quota = RefillingRetryQuota(budget, refill_per_second)
    checker = _ObservedQuotaChecker(budget_quota, throttling, observe or (lambda operation, reason: None))
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
            retry_backoff=standard.ExponentialBackoff(service_name=service, throttling_detector=throttling),
        ),
        retry_event_adapter=adapter,
        retry_quota=checker,
        service_name=service,
    )
    client.meta.events.register(f"after-call.{service}", checker.release_retry_quota)
    client.meta.events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=f"retry-config-{service}")
    return budget_quota
