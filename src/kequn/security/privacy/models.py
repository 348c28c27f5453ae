"""Tables of the privacy area."""
