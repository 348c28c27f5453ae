"""Tables of the audit area."""
