"""The ``replica`` connector: a local SQLite copy of OZmap network elements for a field-service tool (seed 001)."""
