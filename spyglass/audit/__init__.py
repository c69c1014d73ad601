"""The audit trail: events recorded with each change, the webhook outbox and its delivery."""
