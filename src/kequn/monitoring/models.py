"""Monitoring: the tables."""
