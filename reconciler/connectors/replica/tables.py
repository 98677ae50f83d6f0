"""The replica's tables: one per collection, a typed column per record field (the schema a field tool reads).

Column types: ``TEXT``, ``INTEGER``, ``REAL``, ``BOOLEAN`` (stored 0/1, read back as ``bool``) and ``JSON``
(a list or object stored as JSON text, read back decoded). Every table has ``id TEXT PRIMARY KEY`` (the OZmap id)
and ``synced_at`` (UTC ISO time of the last write of the row, set by the connector, never by a rule).
"""

from __future__ import annotations

from typing import Final, Literal

ColumnType = Literal["TEXT", "INTEGER", "REAL", "BOOLEAN", "JSON"]

#: table → column → type (``id`` and ``synced_at`` included)
TABLES: Final[dict[str, dict[str, ColumnType]]] = {
    "boxes": {
        "id": "TEXT",
        "name": "TEXT",
        "project_id": "TEXT",
        "project_name": "TEXT",
        "implanted": "BOOLEAN",
        "draft": "BOOLEAN",
        "lat": "REAL",
        "lng": "REAL",
        "observation": "TEXT",
        "address": "TEXT",
        "service_splitters": "INTEGER",
        "service_ports": "INTEGER",
        "olt_ip": "TEXT",
        "olt_name": "TEXT",
        "synced_at": "TEXT",
    },
    "splitters": {
        "id": "TEXT",
        "name": "TEXT",
        "parent_id": "TEXT",
        "parent_kind": "TEXT",
        "project_id": "TEXT",
        "is_drop": "BOOLEAN",
        "implanted": "BOOLEAN",
        "ratio_input": "INTEGER",
        "ratio_output": "INTEGER",
        "ports_free": "INTEGER",
        "ports_blocked": "INTEGER",
        "free_ports": "JSON",
        "splitter_type_id": "TEXT",
        "created_at": "TEXT",
        "updated_at": "TEXT",
        "synced_at": "TEXT",
    },
}

#: Secondary indexes a field tool needs: table → indexed columns.
INDEXES: Final[dict[str, tuple[str, ...]]] = {"boxes": ("project_id", "name"), "splitters": ("parent_id",)}

_SQL_TYPES: Final[dict[ColumnType, str]] = {
    "TEXT": "TEXT",
    "INTEGER": "INTEGER",
    "REAL": "REAL",
    "BOOLEAN": "INTEGER",
    "JSON": "TEXT",
}


def ddl() -> list[str]:
    """``CREATE TABLE/INDEX IF NOT EXISTS`` statements of every table."""
    statements: list[str] = []
    for table, columns in TABLES.items():
        cols = ", ".join(
            f'"{name}" {_SQL_TYPES[kind]}' + (" PRIMARY KEY NOT NULL" if name == "id" else "")
            for name, kind in columns.items()
        )
        statements.append(f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})')
        statements.extend(
            f'CREATE INDEX IF NOT EXISTS "{table}_{column}" ON "{table}" ("{column}")'
            for column in INDEXES.get(table, ())
        )
    return statements
