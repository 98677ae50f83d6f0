"""The port every connector implements, and the catalogue of collections it exposes.

A connector turns one external system's API into *collections* of flat :class:`~reconciler.model.Record`
values. A collection may be a raw table (IXC ``rad_caixa_ftth``) or a joined view (OZmap ``boxes`` enriched with
project name, service-splitter capacity and the IP of the OLT that feeds it); either way the rule files only see
flat field names, and :class:`CollectionSchema` lists them so a rule naming an unknown field fails at load time.

Connectors receive their ``aiohttp.ClientSession`` and settings from the caller (the seam for tests is the
sandbox server, never a patched function), never touch the state store, and never import each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from reconciler.errors import ReconcilerError
from reconciler.model import Fields, Record, Value


class CollectionSchema(msgspec.Struct, frozen=True):
    """What a rule may say about one collection.

    ``fields``: every field name a record of this collection carries. ``writable``: fields a create/update may
    set (empty for read-only views). ``incremental``: the collection can be streamed "changed since cursor".
    ``deletions``: the collection can list records deleted since a cursor. ``operations``: named operations
    :meth:`Connector.operate` runs on a record (rules with ``[apply] action = "operation"``), each with the
    argument names it reads. ``open_prefixes``: tenant-defined fields (Vetro ``properties.<label>``, COS BE
    ``metadata.<name>``): any name under one of these prefixes is a field a rule may read and write, validated by
    the system itself.
    """

    fields: frozenset[str]
    writable: frozenset[str] = frozenset()
    incremental: bool = False
    deletions: bool = False
    description: str = ""
    operations: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)
    open_prefixes: frozenset[str] = frozenset()


#: system collection name → schema
Catalog = Mapping[str, CollectionSchema]


class Connector(Protocol):
    """One external system. All methods map failures into ``reconciler.errors.RemoteError`` subclasses."""

    system: str

    def catalog(self) -> Catalog:
        """The collections this connector serves."""
        ...

    def stream(
        self,
        collection: str,
        *,
        since: str | None = None,
        deleted: bool = False,
        fields: Collection[str] | None = None,
    ) -> AsyncIterator[Sequence[Record]]:
        """Yield the collection page by page.

        ``since``: only records whose ``updated_at`` >= since (incremental); None = everything (full).
        ``deleted``: yield instead the records deleted since ``since`` (``Record.deleted`` is True).
        ``fields``: the record fields the caller reads (None: all). A connector may leave the others out of the
        records to read faster (IXC decodes only these columns, OZmap connections select only what they need);
        ``id`` and ``updated_at`` are always set. Bad data in a field left out goes unnoticed: a caller that
        quarantines records on bad data asks for the same fields on every read of a collection.
        Raises ``SnapshotIncomplete`` when the server delivers fewer rows than it announced or fails mid-stream
        after retries: a consumer must never infer deletions from a partial stream.
        """
        ...

    async def fetch_by_ids(
        self, collection: str, ids: Sequence[str], *, fields: Collection[str] | None = None
    ) -> list[Record]:
        """The records with these ids (missing ids are simply absent from the answer); ``fields``: as for
        :meth:`stream`."""
        ...

    async def find(self, collection: str, match: Mapping[str, Value]) -> list[Record]:
        """Records whose fields equal every value of ``match`` exactly (case-sensitive)."""
        ...

    async def create(self, collection: str, fields: Fields) -> str:
        """Create a record; return its new id."""
        ...

    async def update(self, collection: str, record_id: str, changes: Fields) -> None:
        """Change only ``changes`` on the record (the connector handles "PUT needs the full record")."""
        ...

    async def delete(self, collection: str, record_id: str) -> None:
        """Remove the record."""
        ...

    async def operate(self, collection: str, record_id: str, operation: str, args: Fields) -> None:
        """Run the named operation (see ``CollectionSchema.operations``) on the record.

        ``args`` are the desired fields of the rule; keys the operation does not take are ignored. Unknown
        operations raise ``ConfigError``; a record that no longer exists raises ``NotFound``.
        """
        ...

    def statistics(self) -> Mapping[str, int]:
        """Counters: requests, retries, failures by kind."""
        ...


@runtime_checkable
class SupportsUpdateMany(Protocol):
    """A connector that can send several field updates in one request (the apply stage batches them)."""

    async def update_many(
        self, collection: str, items: Sequence[tuple[str, Fields]]
    ) -> Sequence[ReconcilerError | None]:
        """Apply each ``(record id, changes)``; the error of each item, None when it was applied."""
        ...
