"""Kequn (客群): self-hosted customer-base management."""

__version__ = "0.1.0"
