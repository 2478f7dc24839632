"""retouch worker: turns object-store upload events into enhanced images.

Nothing here runs at import time; the Celery app, settings and metrics are built by factories.
"""

__version__ = "0.1.0"

# Bumped whenever a change to steps, policy or shipped weights changes the bytes we write:
# it is part of the idempotency key, so a new pipeline version re-enhances old uploads.
PIPELINE_VERSION = "2026.11.1"
