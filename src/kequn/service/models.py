"""Service: the tables."""
