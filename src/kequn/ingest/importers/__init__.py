"""Importers by kind of row: a shared base, one module per kind."""
