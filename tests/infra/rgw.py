"""A throwaway Ceph RGW (S3 gateway) for tests, started by infra/ceph/start-rgw.sh in a temp dir.

    with running_rgw(tmp_path) as rgw:
        rgw.s3.create_bucket(Bucket="listings")
        rgw.sns.create_topic(Name="retouch", Attributes={"push-endpoint": "http://127.0.0.1:8080/?token=..."})
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from tests.infra.conftest import INFRA, tool

# RGW's SNS-compatible API answers for any region name; "default" is its zonegroup's name.
REGION = "default"


@dataclass(frozen=True)
class Rgw:
    endpoint: str
    access_key: str
    secret_key: str
    directory: Path

    @property
    def credentials(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    @property
    def s3(self):
        return self.client("s3")

    @property
    def sns(self):
        return self.client("sns")

    def log(self, daemon: str = "client.rgw") -> str:
        path = self.directory / "log" / f"{daemon}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


@contextmanager
def running_rgw(directory: Path) -> Iterator[Rgw]:
    for daemon in ("ceph-mon", "ceph-osd", "radosgw", "ceph", "monmaptool", "radosgw-admin"):
        tool(daemon)  # skips locally, fails in CI, when Ceph is not installed
    directory.mkdir(parents=True, exist_ok=True)
    try:
        started = subprocess.run([str(INFRA / "ceph" / "start-rgw.sh"), str(directory)],
                                 capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            raise AssertionError(f"start-rgw.sh failed:\n{started.stdout}\n{started.stderr[-4000:]}")
        env = dict(line.split("=", 1) for line in started.stdout.split())
        yield Rgw(env["RGW_ENDPOINT"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], directory)
    finally:
        subprocess.run([str(INFRA / "ceph" / "stop-rgw.sh"), str(directory)], timeout=60)
