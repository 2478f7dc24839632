variable "bucket_name" {
  description = "Bucket sellers upload listing photos to; enhanced images are written back under output_prefix."
  type        = string
}

variable "input_prefix" {
  description = "Only uploads under this prefix notify the queue (RETOUCH_INPUT_PREFIX)."
  type        = string
  default     = "incoming/"
}

variable "output_prefix" {
  description = "Where the worker writes outputs and manifests (RETOUCH_OUTPUT_PREFIX)."
  type        = string
  default     = "enhanced/"

  validation {
    # Outputs under the notified prefix would notify again: an endless loop of re-enhancing.
    condition     = endswith(var.output_prefix, "/") && !startswith(var.output_prefix, var.input_prefix)
    error_message = "output_prefix must end in '/' and must not lie under input_prefix."
  }
}

variable "queue_name" {
  description = "SQS queue that receives the bucket's ObjectCreated notifications (RETOUCH_SQS_QUEUE_URL)."
  type        = string
  default     = "retouch-uploads"
}

variable "oidc_provider_arn" {
  description = "The EKS cluster's IAM OIDC provider ARN (IRSA), trusted to assume the roles below."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the retouch ServiceAccounts."
  type        = string
  default     = "retouch"
}
