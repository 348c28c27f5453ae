"""Automated journeys: triggers, steps, each customer's position and history."""
