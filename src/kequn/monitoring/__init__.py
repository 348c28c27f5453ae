"""Metrics, security alerts on unusual access, readiness checks."""
