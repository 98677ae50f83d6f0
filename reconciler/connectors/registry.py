"""System kind → connector class, looked up by name and imported lazily (anyio's backend lookup style).

Only the entry points (cli, server) use this module; the engine depends on the ``Connector`` Protocol.
:func:`catalogs` answers "which collections and fields does each configured system offer" without any network
or session, so rule files can be validated before anything connects.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import ClassVar, Protocol

import aiohttp

from reconciler.config import SystemConfig
from reconciler.connectors.base import Catalog, Connector
from reconciler.errors import ConfigError

#: kind → "module:Class"
KINDS: dict[str, str] = {
    "ozmap": "reconciler.connectors.ozmap.connector:OzmapConnector",
    "ixc": "reconciler.connectors.ixc.connector:IxcConnector",
    "archolt": "reconciler.connectors.archolt.connector:ArcholtConnector",
    "vetro": "reconciler.connectors.vetro.connector:VetroConnector",
    "cosbe": "reconciler.connectors.cosbe.connector:CosbeConnector",
    "replica": "reconciler.connectors.replica.connector:ReplicaConnector",
}


class ConnectorClass(Protocol):
    """What the registry needs from a connector class."""

    CATALOG: ClassVar[Catalog]

    def __call__(self, config: SystemConfig, session: aiohttp.ClientSession, /) -> Connector: ...


def connector_class(kind: str) -> ConnectorClass:
    """The class serving ``kind``; ConfigError naming the known kinds otherwise."""
    target = KINDS.get(kind)
    if target is None:
        raise ConfigError(f"unknown system kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    module_name, _, class_name = target.partition(":")
    cls: ConnectorClass = getattr(importlib.import_module(module_name), class_name)
    return cls


def create(system: SystemConfig, session: aiohttp.ClientSession) -> Connector:
    """A connector for ``system`` talking through ``session`` (owned by the caller)."""
    return connector_class(system.kind)(system, session)


def catalogs(systems: Mapping[str, SystemConfig]) -> dict[str, Catalog]:
    """Each configured system's catalog, by system name, without touching the network."""
    return {name: connector_class(system.kind).CATALOG for name, system in systems.items()}
