"""Feedback: the tables."""
