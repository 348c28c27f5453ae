"""Journeys: the tables."""
