"""Tessera: a GraphQL composition gateway."""

__version__ = "0.1.0"
