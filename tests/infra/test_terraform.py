"""Terraform: parsed (python-hcl2) and checked for the wiring that matters; `terraform validate` and an
apply against a moto server (real AWS provider, fake AWS) where terraform and its AWS provider exist.

Terraform is in neither Debian nor PyPI, and `terraform init` cannot download providers here, so
those tests run only where both are already installed (set TF_PLUGIN_DIR to a provider mirror;
/opt/tf-plugins is tried by default).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from tests.infra.conftest import INFRA, run, tool

TF = INFRA / "terraform"
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))


def _plain(value):
    """python-hcl2 8 keeps string literals' quotes and marks blocks; drop both so values read as written."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed() -> dict:
    hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed; run infra/ci/install-tools.sh")
    merged: dict = {}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as handle:
            for block, items in _plain(hcl2.load(handle)).items():
                merged.setdefault(block, []).extend(items if isinstance(items, list) else [items])
    return merged


def resource(kind: str, name: str) -> dict:
    for item in parsed()["resource"]:
        if kind in item and name in item[kind]:
            return item[kind][name]
    raise AssertionError(f"no resource {kind}.{name}")


def data(kind: str, name: str) -> dict:
    for item in parsed()["data"]:
        if kind in item and name in item[kind]:
            return item[kind][name]
    raise AssertionError(f"no data {kind}.{name}")


def test_notification_sends_created_uploads_under_the_input_prefix_to_the_queue() -> None:
    notification = resource("aws_s3_bucket_notification", "listings")
    queue = notification["queue"][0]
    assert queue["events"] == ["s3:ObjectCreated:*"]
    assert queue["filter_prefix"] == "${var.input_prefix}"
    assert queue["queue_arn"] == "${aws_sqs_queue.uploads.arn}"
    # S3 checks it may deliver when the configuration is put, so the queue policy must exist first.
    assert notification["depends_on"] == ["${aws_sqs_queue_policy.uploads}"]


def test_queue_accepts_only_this_bucket() -> None:
    statement = data("aws_iam_policy_document", "uploads_queue")["statement"][0]
    assert statement["actions"] == ["sqs:SendMessage"]
    conditions = {c["variable"]: c["values"] for c in statement["condition"]}
    assert conditions["aws:SourceArn"] == ["${aws_s3_bucket.listings.arn}"]
    assert "aws:SourceAccount" in conditions


def test_roles_are_least_privilege() -> None:
    worker = data("aws_iam_policy_document", "worker")["statement"]
    ingester = data("aws_iam_policy_document", "ingester")["statement"]
    assert not any(a.startswith("sqs:") for s in worker for a in s["actions"])
    assert not any(a.startswith("s3:") for s in ingester for a in s["actions"])
    writes = [s for s in worker if "s3:PutObject" in s["actions"]]
    assert [s["resources"] for s in writes] == [["${aws_s3_bucket.listings.arn}/${var.output_prefix}*"]]


def test_output_prefix_cannot_retrigger_the_notification() -> None:
    variable = next(v["output_prefix"] for v in parsed()["variable"] if "output_prefix" in v)
    assert "!startswith(var.output_prefix, var.input_prefix)" in variable["validation"][0]["condition"]


def terraform_with_provider(tmp_path: Path) -> tuple[str, Path]:
    """Copy the module to tmp_path and `terraform init` it from the local provider mirror."""
    terraform = tool("terraform", installed_by_ci=False,
                     why_absent="it is in neither Debian nor PyPI; install it from HashiCorp to run this")
    if not any(PLUGIN_DIR.glob("registry.terraform.io/hashicorp/aws/*")):
        pytest.skip(f"no AWS provider under {PLUGIN_DIR} (set TF_PLUGIN_DIR); init cannot download one here")
    work = tmp_path / "tf"
    shutil.copytree(TF, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    run(terraform, "init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}", cwd=work, timeout=180)
    return terraform, work


def test_terraform_fmt() -> None:
    terraform = tool("terraform", installed_by_ci=False, why_absent="it is in neither Debian nor PyPI")
    run(terraform, "fmt", "-check", "-diff", str(TF))


def test_terraform_validate(tmp_path: Path) -> None:
    terraform, work = terraform_with_provider(tmp_path)
    run(terraform, "validate", cwd=work, timeout=180)


@pytest.mark.slow  # about two minutes: the provider polls until moto's queue and bucket settle
def test_terraform_apply_against_moto_routes_uploads_to_the_queue(tmp_path: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from worker.demo import free_port

    terraform, work = terraform_with_provider(tmp_path)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        # Given the module applied with the real AWS provider pointed at moto
        (work / "moto_provider.tf").write_text(f'''
provider "aws" {{
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {{
    s3  = "{endpoint}"
    sqs = "{endpoint}"
    iam = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
''')
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "AWS_EC2_METADATA_DISABLED": "true"}
        variables = ["-var", "bucket_name=listings", "-var",
                     "oidc_provider_arn=arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"]
        result = subprocess.run([terraform, "apply", "-auto-approve", "-input=false", "-no-color", *variables],
                                cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        outputs = json.loads(run(terraform, "output", "-json", cwd=work).stdout)
        queue_url = outputs["queue_url"]["value"]
        assert outputs["worker_role_arn"]["value"].endswith(":role/retouch-worker")

        # When a seller uploads under incoming/, and the worker writes under enhanced/
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        s3.put_object(Bucket="listings", Key="incoming/shoe.jpg", Body=b"jpeg")
        s3.put_object(Bucket="listings", Key="enhanced/incoming/shoe.jpg", Body=b"jpeg")

        # Then exactly the upload's event reaches the queue
        keys: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in messages.get("Messages", []):
                body = json.loads(message["Body"])
                # Keys arrive URL-encoded, as from AWS; the s3:TestEvent has no Records.
                keys += [unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", [])]
            if keys:
                break
        assert keys == ["incoming/shoe.jpg"]
    finally:
        server.stop()
