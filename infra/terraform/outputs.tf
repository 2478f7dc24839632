output "queue_url" {
  description = "RETOUCH_SQS_QUEUE_URL for the ingester."
  value       = aws_sqs_queue.uploads.id
}

output "ingester_role_arn" {
  description = "Annotate the ServiceAccount retouch-ingester with eks.amazonaws.com/role-arn = this."
  value       = aws_iam_role.ingester.arn
}

output "worker_role_arn" {
  description = "Annotate the ServiceAccount retouch-worker with eks.amazonaws.com/role-arn = this."
  value       = aws_iam_role.worker.arn
}
