"""Tables of the keyring area."""
