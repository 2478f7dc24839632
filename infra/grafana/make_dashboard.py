"""Write dashboards/retouch.json. Edit panels here, then run: python infra/grafana/make_dashboard.py

Generated rather than hand-edited so that panel ids and grid positions stay consistent and every
PromQL expression sits in one readable list (tests/infra check the JSON is current and every metric exists).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).parent / "dashboards" / "retouch.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
# $__rate_interval is at least four scrape intervals, so rate() never sees fewer than two samples.
R = "$__rate_interval"


def q(expr: str, legend: str = "") -> dict:
    return {"expr": expr, "legendFormat": legend or "__auto", "datasource": DS}


def quantiles(metric: str, by: str = "", label: str = "") -> list[dict]:
    """p50, p95 and p99 of a histogram, optionally one line per label set."""
    group = f"le, {by}" if by else "le"
    return [
        q(f"histogram_quantile({p}, sum by ({group}) (rate({metric}_bucket[{R}])))",
          f"p{round(p * 100)} {label}".strip())
        for p in (0.5, 0.95, 0.99)
    ]


def ts(title: str, targets: list[dict], unit: str = "short", description: str = "", stack: bool = False) -> dict:
    custom = {"fillOpacity": 20 if stack else 0, "stacking": {"mode": "normal" if stack else "none"}}
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "targets": targets, "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def stat(title: str, targets: list[dict], unit: str = "short", description: str = "") -> dict:
    return {"type": "stat", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}}


def table(title: str, targets: list[dict], description: str = "") -> dict:
    for target in targets:
        target.update(format="table", instant=True)
    return {"type": "table", "title": title, "description": description, "datasource": DS, "targets": targets,
            "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}]}


FINISHED = 'outcome=~"succeeded|failed"'
# Images delivered per second; engine seconds of failed tasks stay in the numerators: they were paid for too.
ENHANCED = f'sum(rate(retouch_tasks_total{{outcome="succeeded"}}[{R}]))'


def engine_seconds_per_1000(resource: str) -> str:
    return f"1000 * sum(rate(retouch_engine_{resource}_seconds_total[{R}])) / {ENHANCED}"


def price_per_1000(resource: str) -> str:
    """Each worker's seconds at its own configured rate (CPU and GPU nodes are priced differently)."""
    seconds = f"sum by (instance) (rate(retouch_engine_{resource}_seconds_total[{R}]))"
    rate = f'max by (instance) (retouch_price_per_hour_usd{{resource="{resource}"}})'
    return f"1000 * sum({seconds} * on (instance) {rate}) / 3600 / {ENHANCED}"


ROWS: list[tuple[str, list[dict]]] = [
    ("Throughput", [
        stat("Workers up", [q('sum(up{job="retouch-worker"})')], description="Worker processes answering scrapes."),
        stat("Ingesters up", [q('sum(up{job="retouch-ingester"})')]),
        stat("Tasks in progress", [q("sum(retouch_tasks_in_progress)")]),
        stat("Failure ratio (15m)", [q(f'sum(rate(retouch_tasks_total{{outcome="failed"}}[15m])) '
                                       f'/ sum(rate(retouch_tasks_total{{{FINISHED}}}[15m]))')],
             unit="percentunit", description="Failed among finished tasks, every reason."),
        ts("Tasks by outcome", [q(f"sum by (outcome) (rate(retouch_tasks_total[{R}]))", "{{outcome}}")],
           unit="ops", stack=True),
        ts("Megapixels", [q(f"sum(rate(retouch_input_megapixels_total[{R}]))", "decoded"),
                          q(f"sum(rate(retouch_output_megapixels_total[{R}]))", "written")],
           description="Megapixels per second in and out; their ratio is the average upscale area."),
        ts("Events received by the ingester",
           [q(f"sum by (source, outcome) (rate(retouch_events_total[{R}]))", "{{source}} {{outcome}}")],
           unit="ops", stack=True),
        table("Running versions", [q("count by (role, version, pipeline_version) (retouch_worker_info)")],
              description="Processes per role and version: a rollout in progress shows two rows."),
    ]),
    ("Latency", [
        ts("Task duration", quantiles("retouch_task_seconds"), unit="s"),
        ts("Stage duration p95", [q(f"histogram_quantile(0.95, sum by (le, stage) "
                                    f"(rate(retouch_stage_seconds_bucket[{R}])))", "{{stage}}")], unit="s"),
        ts("Time spent per stage", [q(f"sum by (stage) (rate(retouch_stage_seconds_sum[{R}]))", "{{stage}}")],
           unit="s", stack=True,
           description="Worker-seconds per second in each stage: where the capacity goes."),
        ts("Engine duration p95", [q(f"histogram_quantile(0.95, sum by (le, engine, backend) "
                                     f"(rate(retouch_engine_seconds_bucket[{R}])))", "{{engine}} {{backend}}")],
           unit="s"),
    ]),
    ("Failures", [
        ts("Failures by reason",
           [q(f'sum by (reason) (rate(retouch_tasks_total{{outcome="failed"}}[{R}]))', "{{reason}}")],
           unit="ops", stack=True),
        ts("Retries by reason",
           [q(f'sum by (reason) (rate(retouch_tasks_total{{outcome="retried"}}[{R}]))', "{{reason}}")],
           unit="ops", stack=True, description="device_out_of_memory here means tiles were shrunk and retried."),
        ts("Storage retries",
           [q(f"sum by (reason) (rate(retouch_storage_retries_total[{R}]))", "{{reason}}"),
            q(f"sum(rate(retouch_storage_retry_budget_exhausted_total[{R}]))", "budget exhausted")],
           unit="ops", stack=True,
           description="Retries inside the S3 client; 'budget exhausted' means it gave up and the task backs off."),
        ts("Enqueue failures",
           [q(f"sum by (source, reason) (rate(retouch_enqueue_failures_total[{R}]))", "{{source}} {{reason}}")],
           unit="ops", description="Events the ingester could not hand to the broker; they are redelivered."),
        ts("Redeliveries after a crash",
           [q(f"sum by (outcome) (increase(retouch_redeliveries_total[{R}]))", "{{outcome}}"),
            q(f'sum(rate(retouch_lease_renewals_total{{result="failed"}}[{R}]))', "lease renewals failed")],
           description="Tasks started again because their worker died; dead_lettered = given up as worker_lost."),
    ]),
    ("Lag and backlog", [
        ts("Upload to output lag", quantiles("retouch_event_lag_seconds"), unit="s",
           description="From the upload's S3 event time to its enhanced output written. Alert: p95 > 5m."),
        ts("Broker queue wait", quantiles("retouch_queue_wait_seconds"), unit="s",
           description="From enqueue to a worker starting the task: grows when workers are too few."),
        ts("Source SQS backlog", [q("max(retouch_source_queue_messages)", "messages")],
           description="Approximate messages waiting in the SQS queue the ingester reads."),
    ]),
    ("Engines", [
        ts("Model load time p95", [q(f"histogram_quantile(0.95, sum by (le, engine, backend) "
                                     f"(rate(retouch_model_load_seconds_bucket[{R}])))", "{{engine}} {{backend}}")],
           unit="s", description="Load and warm-up; TensorRT builds show here on a cache miss."),
        ts("Tiles per image (mean)",
           [q(f"sum by (engine) (rate(retouch_tiles_per_image_sum[{R}])) "
              f"/ sum by (engine) (rate(retouch_tiles_per_image_count[{R}]))", "{{engine}}")]),
        ts("Engine cache hit ratio",
           [q(f'sum by (cache) (rate(retouch_engine_cache_total{{result="hit"}}[{R}])) '
              f"/ sum by (cache) (rate(retouch_engine_cache_total[{R}]))", "{{cache}}")], unit="percentunit"),
        table("Loaded engines", [q("count by (engine, backend, device) (retouch_backend_info)")]),
        ts("Quality gate: steps kept as they were",
           [q(f'sum by (step, reason) (rate(retouch_gate_total{{verdict="kept"}}[{R}]))', "{{step}}: {{reason}}")],
           unit="ops", stack=True,
           description="Engines auto considered and left out: the photo already good (already_large, "
                       "already_clean, no_visible_change) or the step would hurt (would_flatten_detail, "
                       "changed_content)."),
        ts("Quality gate: share applied",
           [q(f'sum by (step) (rate(retouch_gate_total{{verdict="applied"}}[{R}])) '
              f"/ sum by (step) (rate(retouch_gate_total[{R}]))", "{{step}}")], unit="percentunit"),
    ]),
    ("Cost", [
        ts("Cost per 1,000 images", [q(engine_seconds_per_1000("cpu"), "CPU-seconds"),
                                     q(engine_seconds_per_1000("gpu"), "GPU-seconds")], unit="s",
           description="Engine CPU-seconds (every thread) and GPU-seconds spent per 1,000 enhanced images. "
           "Divide by 3,600 for CPU-hours; times your hourly rate is the bill. Rises with upscale factor, "
           "photo size and fp32 instead of bf16."),
        ts("Price per 1,000 images", [q(price_per_1000("cpu"), "CPU"), q(price_per_1000("gpu"), "GPU")],
           unit="currencyUSD",
           description="The same seconds at each worker's RETOUCH_PRICE_CPU_HOUR / RETOUCH_PRICE_GPU_HOUR; "
           "empty where no rate is set."),
    ]),
    ("GPU", [
        ts("GPU memory used", [q("retouch_gpu_memory_used_bytes / retouch_gpu_memory_total_bytes",
                                 "{{instance}} gpu {{gpu}}")],
           unit="percentunit", description="Alert: above 95% for 10 minutes."),
        ts("GPU utilisation", [q("retouch_gpu_utilization_ratio", "{{instance}} gpu {{gpu}}")], unit="percentunit"),
    ]),
]


def dashboard() -> dict:
    panels: list[dict] = []
    y = 0
    for row_title, row_panels in ROWS:
        panels.append({"type": "row", "title": row_title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        y += 1
        x = line_height = 0
        for panel in row_panels:
            w, h = (6, 4) if panel["type"] == "stat" else (12, 8)
            if x + w > 24:  # start a new line below the tallest panel of this one
                x, y, line_height = 0, y + line_height, 0
            panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            panels.append(panel)
            x, line_height = x + w, max(line_height, h)
        y += line_height
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": "retouch-overview",
        "title": "retouch",
        "description": "Listing-photo enhancement: throughput, latency by stage and engine, failures, lag, GPU.",
        "tags": ["retouch"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0,
        }]},
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
