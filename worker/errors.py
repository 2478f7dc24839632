"""One small error tree whose type decides the handling.

`RetryableError` means "the same input may succeed later" (storage timeouts, throttling, GPU memory);
`PermanentError` means "retrying cannot help" (corrupt or unsupported images, limits, unknown engines).
Every error carries a short snake_case `reason`, used verbatim as the `reason` label of
`retouch_tasks_total` and written to the failure record, so it must stay low-cardinality.
"""

from __future__ import annotations


class RetouchError(Exception):
    """Root of every error the worker raises on purpose."""

    reason: str = "internal_error"
    retryable: bool = False

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class RetryableError(RetouchError):
    """The same input may succeed on a later attempt."""

    retryable = True
    reason = "transient"


class PermanentError(RetouchError):
    """Retrying cannot help; the input is recorded as failed and never retried."""

    retryable = False


class StorageUnavailable(RetryableError):
    reason = "storage_unavailable"


class ObjectNotFound(PermanentError):
    """The uploaded object is gone (deleted before we got to it)."""

    reason = "object_not_found"


class EmptyObject(PermanentError):
    reason = "empty_object"


class NotAnImage(PermanentError):
    reason = "not_an_image"


class CorruptImage(PermanentError):
    reason = "corrupt_image"


class UnsupportedImage(PermanentError):
    reason = "unsupported_image"


class OverLimit(PermanentError):
    """Too many bytes, pixels or frames; checked before decoding anything."""

    reason = "over_limit"


class DeadlineExceeded(PermanentError):
    """The per-task deadline passed between two steps; the same input would time out again."""

    reason = "deadline_exceeded"


class InvalidRequest(PermanentError):
    """A policy or mask that cannot be honoured (unknown task, bad scale, unreadable mask)."""

    reason = "invalid_request"


class WorkerLost(PermanentError):
    """The task's worker died `RETOUCH_MAX_WORKER_LOST` times running it: running it again would kill another."""

    reason = "worker_lost"


class EngineFailure(PermanentError):
    """An engine error mapped into the worker's tree (see `from_engine_error`)."""

    reason = "engine_error"


def from_engine_error(error: Exception) -> RetouchError:
    """Map an `engines.errors.EngineError` onto the worker's tree, keeping its reason and retry flag."""
    reason = getattr(error, "reason", "engine_error")
    cls = RetryableError if getattr(error, "retryable", False) else EngineFailure
    mapped = cls(str(error), reason=reason)
    mapped.__cause__ = error
    return mapped
