"""Engagement: the tables."""
