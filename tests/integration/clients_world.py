"""A hand-built world for seed 002's client features (OZmap ↔ IXC), one record per case.

Network (OZmap): project Chicago; OLT 10.0.0.1 → PON → a network splitter in CE-1 feeding the service splitters
of CTO-1 (one 1x8), CTO-2 (two 1x8: ports 1-8 and 9-16 as the box counts them), and building "Edifício Aurora"
(two service 1x8 splitters and a network splitter); CTO-3 hangs from an OLT IXC does not know, so it never links.
IXC knows the project, the OLT, CTO-1 (id 45), CTO-2 (id 46), "Edifício Aurora - Splitter 1" (id 47, in another
project and elsewhere: condominium splitters match by name only) and an IXC-only box (id 99).

Clients are added per test with :meth:`World.client` (OZmap property + client + drop, the port occupied) and
:meth:`World.login` (IXC customer, contract, login and ONU). :meth:`World.load` writes everything into the
sandboxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .conftest import TS, Sandboxes, ixc_box, oid, ozmap_box, ozmap_splitter

CHICAGO = oid(1)
CE1, B1, B2, B3, BUILDING = oid(100), oid(101), oid(102), oid(103), oid(300)
S1, S2A, S2B, S3 = oid(201), oid(202), oid(203), oid(204)
SB1, SB2, SB_NET = oid(301), oid(302), oid(303)
IXC_B1, IXC_B2, IXC_CONDO1, IXC_LEGACY = "45", "46", "47", "99"
#: service splitter → (its box or building, outputs)
SPLITTERS = {S1: (B1, 8), S2A: (B2, 8), S2B: (B2, 8), S3: (B3, 8), SB1: (BUILDING, 8), SB2: (BUILDING, 8)}
IN_BUILDING = frozenset({SB1, SB2})


@dataclass
class World:
    """The network above plus the clients and logins a test adds."""

    properties: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    occupied: dict[str, dict[int, str]] = field(default_factory=dict)
    customers: list[dict[str, str]] = field(default_factory=list)
    contracts: list[dict[str, str]] = field(default_factory=list)
    logins: list[dict[str, str]] = field(default_factory=list)
    onus: list[dict[str, str]] = field(default_factory=list)

    def client(
        self,
        n: int,
        code: str,
        *,
        splitter: str | None = S1,
        port: int = 1,
        name: str = "",
        implanted: bool = True,
        status: int = 0,
        lat: float | None = -27.59,
        lng: float | None = -48.55,
        potency: float | None = None,
    ) -> str:
        """An OZmap client on ``splitter`` port ``port`` (None: not connected); returns the property id."""
        prop_id, client_id, drop_id, fibre = oid(5000 + n), oid(6000 + n), oid(7000 + n), f"f-drop-{n}"
        box = SPLITTERS[splitter][0] if splitter is not None else B1
        connections = []
        if splitter is not None:
            self.occupied.setdefault(splitter, {})[port] = fibre
            connections = [
                {"id": splitter, "kind": "Splitter", "name": _splitter_name(splitter), "port": port,
                 "implanted": implanted, "fiber": fibre}
            ]  # fmt: skip
        self.properties.append(
            {
                "id": prop_id, "kind": "Property", "project": CHICAGO, "box": box, "pole": None, "drop": drop_id,
                "client": client_id, "parent": BUILDING if splitter in IN_BUILDING else None,
                "address": f"Rua {n}", "observation": "", "coords": [lng, lat] if lat is not None else None,
                "lat": lat, "lng": lng, "potencyRead": potency, "connections": connections,
                "history": {"clients": [{"id": client_id, "code": code, "enter_date": TS, "exit_date": None}]},
                "tags": [], "cables": [drop_id], "createdAt": TS, "updatedAt": TS,
            }
        )  # fmt: skip
        self.clients.append(
            {
                "id": client_id, "kind": "ftth", "code": code, "name": name or code, "observation": "",
                "implanted": implanted, "certified": False, "status": status, "tags": [],
                "onu": {"user_PPPoE": "", "serial_number": "", "mac_address": ""}, "createdAt": TS,
                "updatedAt": TS,
            }
        )  # fmt: skip
        self.drops.append(
            {
                "id": drop_id, "kind": "Drop", "project": CHICAGO, "cableType": oid(9002), "boxA": box,
                "boxB": prop_id, "fibers": [fibre], "poles": [], "fiberNumber": 1, "looseNumber": 1,
                "hierarchyLevel": 4, "implanted": True, "tags": [], "createdAt": TS, "updatedAt": TS,
            }
        )  # fmt: skip
        return prop_id

    def login(
        self,
        n: int,
        login: str,
        *,
        box: str = "0",
        port: str = "0",
        ativo: str = "S",
        tipo: str = "F",
        online: str = "S",
        contract: str | None = "A",
        name: str = "",
        lat: str = "",
        lng: str = "",
        signal: str | None = None,
    ) -> str:
        """An IXC login (customer ``razao`` = ``name``; ``contract`` None = no contract); returns its id."""
        lid = str(n)
        self.customers.append({"id": lid, "razao": name or login, "ativo": ativo, "tipo_pessoa": "F"})
        if contract is not None:
            self.contracts.append({"id": lid, "id_cliente": lid, "status": contract, "tipo": "I"})
        self.logins.append(
            {
                "id": lid, "id_cliente": lid, "id_contrato": lid if contract is not None else "0", "login": login,
                "senha": "s3cret", "ativo": ativo, "online": online, "tipo_conexao_mapa": tipo,
                "autenticacao": "L", "id_caixa_ftth": box, "ftth_porta": port, "latitude": lat, "longitude": lng,
            }
        )  # fmt: skip
        if signal is not None:
            self.onus.append(
                {"id": lid, "id_login": lid, "id_transmissor": "2", "nome": login, "sinal_rx": signal,
                 "radpop_estrutura": "N"}
            )  # fmt: skip
        return lid

    def load(self, sb: Sandboxes) -> None:
        _load_network(sb, self.occupied)
        oz, ixc = sb.ozmap, sb.ixc
        oz.load("ftth-clients", self.clients)
        oz.load("cables", self.drops)
        oz.load("properties", self.properties)
        ixc.load("cliente", self.customers)
        ixc.load("cliente_contrato", self.contracts)
        ixc.load("radusuarios", self.logins)
        ixc.load("radpop_radio_cliente_fibra", self.onus)


def _splitter_name(splitter: str) -> str:
    return "Splitter 2" if splitter in (S2B, SB2) else "Splitter 1"


def _load_network(sb: Sandboxes, occupied: dict[str, dict[int, str]]) -> None:
    oz = sb.ozmap
    oz.load("projects", [{"id": CHICAGO, "name": "Chicago", "createdAt": TS, "updatedAt": TS}])
    oz.load(
        "olts",
        [{"id": oid(10), "kind": "OLT", "name": "OLT-1", "ip": "10.0.0.1", "connectables": [oid(20)],
          "createdAt": TS, "updatedAt": TS}],
    )  # fmt: skip
    oz.load(
        "slots",
        [{"id": oid(20), "parent": oid(10), "connectables": [oid(30)], "createdAt": TS, "updatedAt": TS}],
    )
    oz.load(
        "pons",
        [{"id": oid(30), "parent": oid(20), "connectables": ["f-pon"], "createdAt": TS, "updatedAt": TS}],
    )
    oz.load("boxes", [ozmap_box(100, "CE-1", CHICAGO), ozmap_box(101, "CTO-1", CHICAGO),
                      ozmap_box(102, "CTO-2", CHICAGO), ozmap_box(103, "CTO-3", CHICAGO)])  # fmt: skip
    oz.load(
        "buildings",
        [{"id": BUILDING, "kind": "Building", "name": "Edifício Aurora", "project": CHICAGO,
          "coords": [-48.56, -27.6], "implanted": True, "tags": [], "cables": [], "createdAt": TS, "updatedAt": TS}],
    )  # fmt: skip
    feeds = {S1: "f-a", S2A: "f-b", S2B: "f-c", S3: "f-unknown", SB1: "f-d", SB2: "f-e"}
    rows = [
        ozmap_splitter(200, CE1, CHICAGO, is_drop=False, inputs=["f-pon"],
                       outputs=["f-a", "f-b", "f-c", "f-d", "f-e", None, None, None]),
        ozmap_splitter(303, BUILDING, CHICAGO, is_drop=False, inputs=[None], outputs=[None] * 4, name="Splitter 0"),
    ]  # fmt: skip
    for splitter, (parent, outputs) in SPLITTERS.items():
        ports = occupied.get(splitter, {})
        row = ozmap_splitter(
            int(splitter, 16), parent, CHICAGO, is_drop=True, inputs=[feeds[splitter]],
            outputs=[ports.get(i + 1) for i in range(outputs)], name=_splitter_name(splitter),
        )  # fmt: skip
        rows.append(row)
    oz.load("splitters", rows)
    ixc = sb.ixc
    ixc.load(
        "df_projeto",
        [{"id": "3", "nome": "Chicago", "latitude": "-27.6", "longitude": "-48.5", "zoom": "14", "status": "A"},
         {"id": "4", "nome": "Legado", "latitude": "-27.6", "longitude": "-48.5", "zoom": "14", "status": "A"}],
    )  # fmt: skip
    ixc.load("radpop", [{"id": "1", "pop": "POP Centro"}])
    ixc.load(
        "radpop_radio", [{"id": "2", "descricao": "OLT-1", "ip": "10.0.0.1", "id_pop": "1", "ativo": "S"}]
    )
    ixc.load(
        "rad_caixa_ftth",
        [
            ixc_box(IXC_B1, "CTO-1", "3", capacidade="8"),
            ixc_box(IXC_B2, "CTO-2", "3"),
            ixc_box(IXC_CONDO1, "Edifício Aurora - Splitter 1", "4", capacidade="8", latitude="-20.0"),
            ixc_box(IXC_LEGACY, "CTO-LEGADO", "4", capacidade="8"),
        ],
    )
