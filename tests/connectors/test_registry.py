"""The registry: kind → connector class by lazy import, catalogs without any network."""

from __future__ import annotations

import aiohttp
import pytest

from reconciler.connectors import registry
from reconciler.connectors.base import Connector
from reconciler.connectors.ixc.connector import IxcConnector
from reconciler.connectors.ozmap.connector import OzmapConnector
from reconciler.errors import ConfigError
from tests.connectors.conftest import system

pytestmark = pytest.mark.anyio


def test_catalogs_need_no_session_or_network() -> None:
    systems = {
        "oz": system("ozmap", "http://192.0.2.1", "k"),
        "erp": system("ixc", "http://192.0.2.2", "1:h"),
    }
    catalogs = registry.catalogs(systems)
    boxes = catalogs["oz"]["boxes"]
    assert {"project_name", "service_splitters", "service_ports", "olt_ip", "olt_name"} <= boxes.fields
    assert boxes.incremental and boxes.deletions and not boxes.writable
    caixa = catalogs["erp"]["rad_caixa_ftth"]
    assert {"descricao", "id_projeto", "id_transmissor", "capacidade", "status"} <= caixa.writable
    assert caixa.incremental and not caixa.deletions
    assert "senha" not in catalogs["erp"]["radpop_radio"].fields


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known: .*ixc.*ozmap") as caught:
        registry.catalogs({"x": system("netbox", "http://192.0.2.3", "k")})
    assert "netbox" in str(caught.value)


async def test_create_builds_the_connector_of_the_kind(session: aiohttp.ClientSession) -> None:
    oz = registry.create(system("ozmap", "http://192.0.2.1", "k"), session)
    erp = registry.create(system("ixc", "http://192.0.2.2", "1:h"), session)
    assert isinstance(oz, OzmapConnector) and oz.system == "ozmap"
    assert isinstance(erp, IxcConnector) and erp.catalog() is IxcConnector.CATALOG
    assert oz.statistics() == {}


def _conforms(oz: OzmapConnector, erp: IxcConnector) -> list[Connector]:
    """Never run: mypy checks here that both classes implement the Connector Protocol exactly."""
    return [oz, erp]
