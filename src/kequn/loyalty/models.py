"""Loyalty: the tables."""
