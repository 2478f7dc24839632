# S3 -> SQS notification wiring and the least-privilege roles of retouch's two processes.
# The ingester reads the queue; the worker reads uploads and writes outputs. Neither can do the other's job.

data "aws_caller_identity" "current" {}

locals {
  # The OIDC provider's host/path, as it appears in token claims ("oidc.eks.<region>.amazonaws.com/id/<id>").
  oidc_issuer = element(split(":oidc-provider/", var.oidc_provider_arn), 1)
}

resource "aws_s3_bucket" "listings" {
  bucket = var.bucket_name
}

resource "aws_s3_bucket_public_access_block" "listings" {
  bucket                  = aws_s3_bucket.listings.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Notifications that failed five times (say, a bug in parsing) wait here for a look, not forever in the queue.
resource "aws_sqs_queue" "uploads_dead_letter" {
  name                      = "${var.queue_name}-dead-letter"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "uploads" {
  name                    = var.queue_name
  sqs_managed_sse_enabled = true
  # The ingester only enqueues a Celery task per record, in well under a second; a crashed ingester's
  # messages come back after a minute.
  visibility_timeout_seconds = 60
  message_retention_seconds  = 345600 # 4 days: covers a long weekend of the ingester being down
  receive_wait_time_seconds  = 20     # long polling by default
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.uploads_dead_letter.arn
    maxReceiveCount     = 5
  })
}

# S3 may send to the queue, and only on behalf of this bucket in this account (confused-deputy guard).
data "aws_iam_policy_document" "uploads_queue" {
  statement {
    sid       = "S3BucketNotifications"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.uploads.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.listings.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "uploads" {
  queue_url = aws_sqs_queue.uploads.id
  policy    = data.aws_iam_policy_document.uploads_queue.json
}

resource "aws_s3_bucket_notification" "listings" {
  bucket = aws_s3_bucket.listings.id
  queue {
    queue_arn     = aws_sqs_queue.uploads.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.input_prefix
  }
  # S3 sends a test event and checks it may deliver when the configuration is put: the policy must exist first.
  depends_on = [aws_sqs_queue_policy.uploads]
}

# IRSA: a pod running as ServiceAccount <namespace>/<name> may assume the role of the same purpose.
data "aws_iam_policy_document" "assume" {
  for_each = toset(["ingester", "worker"])
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:retouch-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ingester" {
  name               = "retouch-ingester"
  assume_role_policy = data.aws_iam_policy_document.assume["ingester"].json
}

resource "aws_iam_role" "worker" {
  name               = "retouch-worker"
  assume_role_policy = data.aws_iam_policy_document.assume["worker"].json
}

data "aws_iam_policy_document" "ingester" {
  statement {
    sid = "ConsumeNotifications"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes", # the backlog gauge retouch_source_queue_messages
    ]
    resources = [aws_sqs_queue.uploads.arn]
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.listings.arn}/${var.input_prefix}*"]
  }
  statement {
    sid = "WriteOutputs"
    # GetObject too: the worker reads its own manifests to skip work already done.
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${aws_s3_bucket.listings.arn}/${var.output_prefix}*"]
  }
  statement {
    # Without ListBucket, HEAD of a missing output answers 403 instead of 404, and the worker's
    # "already done?" check would read as an access error.
    sid       = "MissingMeansNotFound"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.listings.arn]
  }
}

resource "aws_iam_role_policy" "ingester" {
  name   = "retouch-ingester"
  role   = aws_iam_role.ingester.id
  policy = data.aws_iam_policy_document.ingester.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "retouch-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}
