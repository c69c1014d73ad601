"""Metadata store: tables, engine and migrations."""
