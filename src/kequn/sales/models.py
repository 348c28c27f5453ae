"""Sales: the tables."""
