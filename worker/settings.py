"""Typed settings, one class per area, read from `RETOUCH_*` environment variables.

Nothing is read at import time: `load_settings()` builds every area at start-up and reports every
invalid variable at once, so an operator fixes a deployment in one go rather than one crash at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engines.settings import EngineSettings


class _Area(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETOUCH_", extra="ignore", frozen=True)


class BrokerSettings(_Area):
    """Where Celery tasks travel."""

    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL (redis://, amqp://, sqs://). Unset: an embedded SQLite broker "
        "in the cache directory, so the demo runs with nothing installed.",
    )
    queue: str = Field(default="retouch", description="Queue the enhance tasks go to.")
    dead_letter_queue: str = Field(
        default="retouch.dead-letter",
        description="Queue that receives a record of every permanently failed upload; no worker consumes it.",
    )
    max_retries: int = Field(
        default=100, ge=0, description="Most task retries for retryable errors (the horizon usually ends them first).")
    retry_horizon_seconds: float = Field(
        default=1200.0, gt=0,
        description="Retryable errors are retried, with backoff and jitter, until this long after the first attempt; "
        "then the upload is dead-lettered.")
    retry_backoff_max_seconds: float = Field(default=120.0, gt=0, description="Cap of the retry backoff.")
    lease_seconds: int = Field(
        default=60, ge=5,
        description="Redis / SQS brokers: a delivered task is redelivered this long after its worker stops renewing "
        "it (killed, node lost); a live worker renews every lease/4 s.")
    max_worker_lost: int = Field(
        default=3, ge=1,
        description="A task whose worker died this many times while running it is dead-lettered (worker_lost).")

    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        from engines.settings import engine_settings

        path = engine_settings().cache_root / "broker.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqla+sqlite:///{path}"


class StorageSettings(_Area):
    """Object storage: where uploads come from and enhanced images go."""

    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, Ceph RGW, moto).")
    s3_region: str = Field(default="us-east-1", description="Region for signing requests.")
    s3_max_attempts: int = Field(default=5, ge=1, description="boto3 standard-mode attempts per call.")
    s3_retry_budget: int = Field(
        default=500, ge=0, description="boto3 retry budget per process (botocore: 14 per 5xx or dropped connection).")
    s3_retry_refill_per_second: float = Field(
        default=5.0, ge=0, description="Tokens the retry budget regains per second, so a long fault cannot drain it.")
    output_bucket: str | None = Field(default=None, description="Bucket for outputs; unset: the source bucket.")
    output_prefix: str = Field(default="enhanced/", description="Key prefix of outputs and their manifests.")
    input_prefix: str = Field(default="", description="Only keys under this prefix are enhanced.")

    @field_validator("output_prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        if not value or not value.endswith("/"):
            raise ValueError("must be a non-empty folder prefix ending in '/', or outputs would re-trigger us")
        return value


class LimitSettings(_Area):
    """Checked before decoding: an image bomb costs nothing but a header read."""

    max_input_bytes: int = Field(default=50 * 1024 * 1024, gt=0, description="Largest upload fetched.")
    max_input_pixels: int = Field(default=40_000_000, gt=0, description="Largest width x height decoded.")
    max_frames: int = Field(default=1, ge=1, description="Most frames (animated images beyond are refused).")
    max_output_pixels: int = Field(default=64_000_000, gt=0, description="Upscaling stops below this size.")
    task_deadline_seconds: float = Field(default=600.0, gt=0, description="Per-task deadline, checked between steps.")


class PolicySettings(_Area):
    """What the planner decides for an image when the request does not say."""

    target_short_side: int = Field(default=1024, gt=0, description="Upscale until the short side reaches this.")
    max_scale: Literal[1, 2, 4] = Field(default=4, description="Largest super-resolution factor used.")
    denoise_sigma_threshold: float = Field(
        default=6.0, ge=0, description="Estimated noise sigma (0-255 scale) above which we denoise."
    )
    denoise_jpeg_quality_below: int = Field(
        default=60, ge=0, le=100, description="JPEG quality below which we remove compression artefacts."
    )
    output_format: Literal["auto", "jpeg", "webp", "png", "avif"] = Field(
        default="auto", description="auto keeps JPEG as JPEG and writes PNG for images with alpha."
    )
    output_quality: int = Field(default=90, ge=1, le=100, description="Quality for lossy formats.")
    keep_metadata: bool = Field(default=False, description="Keep EXIF (camera, GPS) in outputs.")
    backend: Literal["auto", "torch", "onnxruntime", "tensorrt"] = Field(
        default="auto", description="Engine backend; auto picks TensorRT > CUDA torch > ONNX Runtime CPU."
    )
    sr_model: str | None = Field(default=None, description="Super-resolution model id, path or s3:// URI.")
    denoise_model: str | None = Field(default=None, description="Denoise model id, path or s3:// URI.")
    inpaint_model: str | None = Field(default=None, description="Inpainting model id, path or s3:// URI.")
    tone_model: str | None = Field(default=None, description="Tone and colour model id, path or s3:// URI.")
    tone: Literal["auto", "always", "never"] = Field(
        default="auto", description="Tone and colour correction: auto (when visible), always, or never."
    )
    tone_min_delta_e: float = Field(
        default=2.0, ge=0, description="auto applies the tone correction only above this mean CIEDE2000 change."
    )
    look: str = Field(
        default="neutral", description="Look after the correction: neutral, bright, or a look JSON path / s3:// URI."
    )
    background: Literal["keep", "white", "transparent"] = Field(
        default="keep",
        description="Background: keep (never removed), white (product composited on white) or transparent (cut out).",
    )
    background_model: str | None = Field(default=None, description="Matting model id, path or s3:// URI.")
    background_shadow: bool = Field(default=False, description="On white: a soft contact shadow under the product.")
    background_min_confidence: float = Field(
        default=0.8, ge=0, le=1,
        description="The background is removed only when the matte's confidence reaches this; else kept as it was.",
    )
    canvas_aspect: str | None = Field(
        default=None, description="Fit every photo to this width:height canvas (e.g. 1:1, 4:5, 3:4); unset: keep."
    )
    canvas_fit: Literal["outpaint", "pad", "blur"] = Field(
        default="outpaint", description="How the canvas's new bands are filled: generated, solid colour, blurred edge."
    )
    inpaint_rects: str | None = Field(
        default=None, description="Regions to inpaint in every photo, 'x,y,w,h;...' (usually per bucket)."
    )

    @field_validator("look")
    @classmethod
    def _look_names_a_look(cls, value: str) -> str:
        # A file's contents are checked when it is read; a misspelt name is caught here, at start-up,
        # rather than failing every upload.
        from worker.pipeline.looks import BUILTIN_LOOKS

        if value not in BUILTIN_LOOKS and not value.endswith(".json"):
            raise ValueError(f"look {value!r} is neither {', '.join(BUILTIN_LOOKS)} nor a look .json path or URI")
        return value

    @field_validator("canvas_aspect")
    @classmethod
    def _aspect_parses(cls, value: str | None) -> str | None:
        if value is not None:
            from worker.pipeline.canvas import parse_aspect

            parse_aspect(value)
        return value


class MetricsSettings(_Area):
    """Prometheus exposition and logs."""

    metrics_port: int = Field(default=9108, ge=0, le=65535, description="Port of /metrics; 0 disables it.")
    metrics_addr: str = Field(default="0.0.0.0", description="Address /metrics listens on.")
    log_level: str = Field(default="INFO", description="Log level of every retouch process (--log-level wins).")


class IngestSettings(_Area):
    """How events reach us."""

    sqs_queue_url: str | None = Field(default=None, description="SQS queue receiving S3 notifications.")
    sqs_wait_seconds: int = Field(default=20, ge=0, le=20, description="SQS long-poll wait.")
    webhook_secret: str | None = Field(
        default=None, description="Shared secret required in the webhook's Authorization header."
    )
    amqp_url: str | None = Field(default=None, description="RabbitMQ carrying RGW/MinIO notifications.")
    amqp_exchange: str = Field(default="retouch-notifications", description="Exchange notifications arrive on.")
    amqp_routing_key: str = Field(default="#", description="Binding key (RGW uses the topic's name).")
    amqp_queue: str = Field(default="retouch-notifications", description="Durable queue the ingester reads.")


class BucketPolicySettings(_Area):
    """Per-bucket policy overrides, so one fleet serves marketplaces with different canvases."""

    bucket_policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='JSON: {"bucket": {"canvas_aspect": "1:1", ...}} overriding RETOUCH_* policy fields.',
    )


class CostSettings(_Area):
    """Hourly rates that turn the CPU and GPU seconds each image used into a price in its manifest."""

    price_cpu_hour: float | None = Field(
        default=None, ge=0, description="USD per CPU-hour (one core busy for an hour); unset: no price, only seconds.")
    price_gpu_hour: float | None = Field(
        default=None, ge=0, description="USD per GPU-hour; unset: GPU seconds are recorded but not priced.")


class SettingsError(ValueError):
    """Every invalid setting found at start-up, listed together."""


@dataclass(frozen=True)
class Settings:
    broker: BrokerSettings
    storage: StorageSettings
    limits: LimitSettings
    policy: PolicySettings
    metrics: MetricsSettings
    ingest: IngestSettings
    buckets: BucketPolicySettings
    engines: EngineSettings
    cost: CostSettings

    def policy_for(self, bucket: str) -> PolicySettings:
        """The policy with this bucket's overrides applied (validated at start-up)."""
        override = self.buckets.bucket_policies.get(bucket)
        if not override:
            return self.policy
        return PolicySettings.model_validate({**self.policy.model_dump(), **override})


AREAS = {
    "broker": BrokerSettings,
    "storage": StorageSettings,
    "limits": LimitSettings,
    "policy": PolicySettings,
    "metrics": MetricsSettings,
    "ingest": IngestSettings,
    "buckets": BucketPolicySettings,
    "engines": EngineSettings,
    "cost": CostSettings,
}


def variable(field: str) -> str:
    """The environment variable of a settings field, for handing settings to a child process."""
    if not any(field in area.model_fields for area in AREAS.values()):
        raise KeyError(f"no settings field {field!r}")
    return f"RETOUCH_{field.upper()}"


def load_settings() -> Settings:
    """Read every area from the environment; raise one SettingsError naming every bad variable."""
    built: dict[str, BaseSettings] = {}
    problems: list[str] = []
    for name, cls in AREAS.items():
        try:
            built[name] = cls()
        except ValidationError as error:
            for item in error.errors():
                field = str(item["loc"][0]) if item["loc"] else "?"
                problems.append(f"RETOUCH_{field.upper()}: {item['msg']} (got {item.get('input')!r})")
    if "buckets" in built:
        # Checked over the environment's policy, or over the defaults when that is invalid itself.
        base = built["policy"].model_dump() if "policy" in built else {}
        for bucket, override in built["buckets"].bucket_policies.items():  # type: ignore[attr-defined]
            try:
                PolicySettings.model_validate({**base, **override})
            except ValidationError as error:
                for item in error.errors():
                    problems.append(f"RETOUCH_BUCKET_POLICIES[{bucket}].{item['loc'][0]}: {item['msg']}")
            unknown = set(override) - set(PolicySettings.model_fields)
            if unknown:
                problems.append(f"RETOUCH_BUCKET_POLICIES[{bucket}]: unknown fields {sorted(unknown)}")
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**built)  # type: ignore[arg-type]
