"""Sharing: members and their statuses, the consumer inbox, usage tracking."""
