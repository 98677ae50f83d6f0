"""A seeded, deterministic, coherent FTTH network for the OZmap and IXC sandboxes.

``World(seed=42, scale=1000)`` describes one ISP: OZmap holds the documented network (projects, OLTs → slots →
PONs → network splitters in CE boxes → service splitters in CTO boxes and buildings → clients on ports), IXC holds
the business side (projects, OLTs by IP, pre-existing boxes, customers, contracts, logins, ONUs). The two sides
agree where a synced ISP would and disagree on purpose wherever seed 002 (OZmap ↔ IXC) has work to do or a case
to refuse; :meth:`World.summary` counts every such category so tests can assert the plan an engine should make.

``scale`` ≈ number of OZmap source entities (service boxes + clients): ~N/10 service splitters, ~0.9 N clients
(4-14 of 16 ports taken, mean 9). Rows are generated lazily, in id order, from a compact skeleton
(:mod:`~reconciler.sandbox.generate_layout`) and per-index hashes, so the same ``(seed, scale)`` always yields
identical rows and the generator holds almost no memory of its own.

Categories and their shares (forced at least once in small worlds, see ``generate_layout.FORCED_*``):

- PONs: 3 % on OLTs whose IP IXC lacks, 2 % on OLTs of the project IXC lacks (the last OZmap project).
- Containers: 1 % empty CTO boxes, 2.5 % buildings (1-3 service splitters), 4 % CTOs with two splitters, plus
  one CE box (network splitter only) per 8 service splitters.
- CTO boxes on healthy OLTs: 5 % in project, 0.3 % without coords, 2 % untraceable to an OLT, 14 % pre-existing
  in IXC unchanged, 14 % pre-existing with drifted fields, 1 % case-different name in IXC, 1 % same name in
  another IXC project, the rest new. Buildings: 30 % pre-existing in IXC (every splitter as a box).
- Clients (``generate_base.CLIENT_SHARES``): 84 % active, 1 % without IXC login, 4 % radio login, 1 % each
  cancelled without contract / with contract I / contract N, reservations 3 % pending (P), 3 % to activate (A),
  2 % withdrawn (D). IXC side: 10 % name differs, 10 % coords shifted + 2 % empty, 5 % stale port on
  pre-existing boxes, 2 % pointing at a legacy IXC-only box, ONUs without reading for 30 % of readings plus every
  reservation and inactive login; ``online`` S 55 % / N 15 % / SS 25 % / "" 5 % (SS when inactive).
- IXC-only: 2 % extra legacy boxes (2 logins each), logins to create on 15 % of the pre-existing boxes (2/3 with a
  free port, 1/3 without), and ~0.3 % each of fiber logins without box, radio logins and inactive logins.

Conventions the engine must share: the transmitter is the OLT feeding a box's first service splitter (by name);
an IXC box's ports run across its splitters (splitter 2, port 1 = ``ftth_porta`` 17); a building splitter is the
IXC box ``"<building> - <splitter>"``; coordinates are 6-decimal degrees (IXC text ``repr`` of the float).
Timestamps fall in the year before a fixed anchor (2026-01-01) so every run is identical.

Modules: ``generate_base`` (hashing, ids, names, category codes), ``generate_layout`` (skeleton),
``generate_ozmap``/``generate_ixc`` (network rows), ``generate_clients``/``generate_logins`` (client-side rows).
"""

from __future__ import annotations

import collections
import gc
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from reconciler.sandbox import generate_base as gb
from reconciler.sandbox import generate_clients as cl
from reconciler.sandbox import generate_ixc as ixc_net
from reconciler.sandbox import generate_logins as lg
from reconciler.sandbox import generate_ozmap as oz
from reconciler.sandbox.generate_layout import SERVICE_PORTS, Layout

__all__ = ["World"]

FREEZE_CLIENTS = 50_000
"""Worlds with at least this many clients end their load with ``gc.freeze()``."""


class Loadable(Protocol):
    """What :meth:`World.load_into` needs of a sandbox store."""

    def load(self, name: str, rows: Iterable[dict[str, Any]], /) -> object:
        """Take the rows of one collection/table (appending; an existing id is replaced)."""
        ...


class World:
    """One seeded ISP network, readable as OZmap collections and IXC tables."""

    def __init__(self, *, seed: int, scale: int) -> None:
        """Lay out the skeleton (about a second at scale 1 000 000); rows are only built when asked for."""
        self.seed = seed
        self.scale = scale
        self.layout = Layout(seed=seed, scale=scale)
        self._pools: gb.TimePools | None = None
        self._summary: dict[str, int] | None = None

    def __repr__(self) -> str:
        return f"World(seed={self.seed}, scale={self.scale})"

    @property
    def pools(self) -> gb.TimePools:
        """The shared timestamp pools (built on first use)."""
        if self._pools is None:
            self._pools = gb.TimePools(self.seed)
        return self._pools

    @staticmethod
    def ozmap_collections() -> tuple[str, ...]:
        """OZmap collection names, referenced collections first."""
        return (*oz.COLLECTIONS, *cl.OZMAP_COLLECTIONS)

    @staticmethod
    def ixc_tables() -> tuple[str, ...]:
        """IXC table names, referenced tables first."""
        return (*ixc_net.TABLES, *lg.IXC_TABLES)

    def ozmap_rows(self, collection: str) -> Iterator[dict[str, Any]]:
        """Rows of one OZmap collection as ``GET /api/v2/<collection>`` returns them, in id order."""
        if collection in cl.OZMAP_COLLECTIONS:
            return cl.ozmap_rows(self.layout, self.pools, collection)
        try:
            build = oz.COLLECTIONS[collection]
        except KeyError:
            raise KeyError(f"unknown OZmap collection {collection!r}") from None
        return build(self.layout, self.pools)

    def ixc_rows(self, table: str) -> Iterator[dict[str, str]]:
        """Rows of one IXC table as the list endpoint returns them (all values strings), in id order."""
        if table in lg.IXC_TABLES:
            return lg.ixc_rows(self.layout, self.pools, table)
        try:
            build = ixc_net.TABLES[table]
        except KeyError:
            raise KeyError(f"unknown IXC table {table!r}") from None
        return build(self.layout, self.pools)

    def load_into(self, ozmap: Loadable | None, ixc: Loadable | None) -> None:
        """Load every collection/table into the given stores (None skips that system).

        Network rows stream collection by collection; client-side rows of both systems are built in one pass,
        in batches, each client computed once with its strings shared by both stores. The collector is paused
        during the load and the loaded rows are frozen out of later collections (``gc.freeze``).
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            if ozmap is not None:
                for name in oz.COLLECTIONS:
                    ozmap.load(name, self.ozmap_rows(name))
            if ixc is not None:
                for name in ixc_net.TABLES:
                    ixc.load(name, self.ixc_rows(name))
            if ozmap is None and ixc is None:
                return
            self._load_clients(ozmap, ixc)
        finally:
            if self.layout.n_clients >= FREEZE_CLIENTS:
                gc.freeze()  # long-lived rows: keep them out of every later collection
            if enabled:
                gc.enable()

    def _load_clients(self, ozmap: Loadable | None, ixc: Loadable | None, batch: int = 20_000) -> None:
        """One pass over the clients building all seven client-side row kinds, loaded ``batch`` at a time."""
        lay, pools = self.layout, self.pools
        properties: list[dict[str, Any]] = []
        ftth: list[dict[str, Any]] = []
        drops: list[dict[str, Any]] = []
        customers: list[dict[str, str]] = []
        contracts: list[dict[str, str]] = []
        logins: list[dict[str, str]] = []
        onus: list[dict[str, str]] = []
        tables: tuple[tuple[Loadable | None, str, list[Any]], ...] = (
            (ozmap, "properties", properties),
            (ozmap, "ftth-clients", ftth),
            (ozmap, "cables", drops),
            (ixc, "cliente", customers),
            (ixc, "cliente_contrato", contracts),
            (ixc, "radusuarios", logins),
            (ixc, "radpop_radio_cliente_fibra", onus),
        )

        def add_login(login: lg.Login) -> None:
            customers.append(lg.customer_row(pools, login))
            logins.append(lg.login_row(pools, login))
            contract = lg.contract_row(pools, login)
            if contract is not None:
                contracts.append(contract)
            onu = lg.onu_row(lay, pools, login)
            if onu is not None:
                onus.append(onu)

        def flush() -> None:
            for store, name, rows in tables:
                if store is not None:
                    store.load(name, rows)
                rows.clear()

        pending = 0
        for client in cl.clients(lay):
            if ozmap is not None:
                properties.append(cl.property_row(lay, pools, client))
                ftth.append(cl.ftth_client_row(lay, pools, client))
                drops.append(cl.drop_row(lay, pools, client))
            if ixc is not None:
                login = lg.login_of(lay, client)
                if login is not None:
                    add_login(login)
            pending += 1
            if pending == batch:
                flush()
                pending = 0
        if ixc is not None:
            for login in lg.ixc_only_logins(lay):
                add_login(login)
        flush()

    def summary(self) -> dict[str, int]:
        """Counts of every category of the world (computed once; a pass over all clients)."""
        if self._summary is None:
            counts: dict[str, int] = {}
            counts.update(self._network_counts())
            counts.update(self._client_counts())
            self._summary = counts
        return dict(self._summary)

    # ------------------------------------------------------------------------------------------------ counts
    def _network_counts(self) -> dict[str, int]:
        lay = self.layout
        cat = collections.Counter(lay.cont_category[c] for c in range(lay.n_containers))
        kinds = collections.Counter(lay.cont_kind)
        olt_cat = collections.Counter(lay.olt_category)
        building_splitters = sum(lay.cont_count[c] for c in lay.building_container)
        pre_building_splitters = sum(
            lay.cont_count[c] for c in lay.building_container if lay.cont_category[c] == gb.B_BUILDING_PRE
        )
        occupied = sum(bin(m).count("1") for m in lay.ss_occupied)
        blocked = sum(bin(m).count("1") for m in lay.ss_blocked)
        n_cto = len(lay.box_container)
        eligible = n_cto - kinds[gb.C_EMPTY] - cat[gb.B_IN_PROJECT]
        refused = (
            cat[gb.B_NO_COORDS] + cat[gb.B_UNTRACEABLE] + cat[gb.B_MISSING_OLT] + cat[gb.B_MISSING_PROJECT]
        )
        pre = cat[gb.B_PRE_EXACT] + cat[gb.B_PRE_DRIFT]
        to_create = eligible - refused - pre
        ixc_boxes = (
            pre
            + cat[gb.B_CASE_TRAP]
            + cat[gb.B_OTHER_PROJECT]
            + pre_building_splitters
            + lay.n_ixc_only_boxes
        )
        return {
            "projects": lay.n_projects,
            "projects_missing_in_ixc": 1,
            "ixc_projects": lay.n_regular_projects + 1,
            "olts": lay.n_olts,
            "olts_missing_in_ixc": olt_cat[gb.OLT_NO_IP],
            "olts_in_missing_project": olt_cat[gb.OLT_NO_PROJECT],
            "ixc_transmitters": lay.n_olts - olt_cat[gb.OLT_NO_IP] + 2,
            "slots": sum(lay.olt_slots(o) for o in range(lay.n_olts)),
            "pons": lay.n_pons,
            "boxes": lay.n_groups + n_cto,
            "boxes_network_only": lay.n_groups,
            "boxes_cto": n_cto,
            "boxes_empty": kinds[gb.C_EMPTY],
            "boxes_without_service_splitter": lay.n_groups + kinds[gb.C_EMPTY],
            "boxes_with_two_service_splitters": kinds[gb.C_CTO2],
            "boxes_in_project": cat[gb.B_IN_PROJECT],
            "service_boxes_eligible": eligible,
            "boxes_without_coords": cat[gb.B_NO_COORDS],
            "boxes_untraceable": cat[gb.B_UNTRACEABLE],
            "boxes_olt_missing_in_ixc": cat[gb.B_MISSING_OLT],
            "boxes_project_missing_in_ixc": cat[gb.B_MISSING_PROJECT],
            "service_boxes_ok": eligible - refused,
            "boxes_preexisting_in_ixc": pre,
            "boxes_preexisting_exact": cat[gb.B_PRE_EXACT],
            "boxes_preexisting_drifted": cat[gb.B_PRE_DRIFT],
            "boxes_case_different_name_in_ixc": cat[gb.B_CASE_TRAP],
            "boxes_same_name_other_project_in_ixc": cat[gb.B_OTHER_PROJECT],
            "boxes_to_create": to_create,
            "boxes_to_create_if_create_box_without_olt": to_create
            + cat[gb.B_MISSING_OLT]
            + cat[gb.B_UNTRACEABLE],
            "ixc_only_boxes": lay.n_ixc_only_boxes,
            "ixc_boxes": ixc_boxes,
            "buildings": kinds[gb.C_BUILDING],
            "buildings_preexisting_in_ixc": cat[gb.B_BUILDING_PRE],
            "building_splitters": building_splitters,
            "building_splitters_preexisting_in_ixc": pre_building_splitters,
            "building_splitters_to_create": building_splitters - pre_building_splitters,
            "splitters": lay.n_service + lay.n_groups,
            "service_splitters": lay.n_service,
            "network_splitters": lay.n_groups,
            "service_ports": lay.n_service * SERVICE_PORTS,
            "occupied_ports": occupied,
            "blocked_ports": blocked,
            "free_ports": lay.n_service * SERVICE_PORTS - occupied - blocked,
        }

    def _client_counts(self) -> dict[str, int]:
        lay = self.layout
        n: collections.Counter[str] = collections.Counter()
        names = {
            gb.CL_ACTIVE: "clients_active",
            gb.CL_NO_LOGIN: "clients_without_ixc_login",
            gb.CL_RADIO: "clients_with_radio_login",
            gb.CL_CANCEL_NO_CONTRACT: "clients_cancelled_without_contract",
            gb.CL_CANCEL_I: "clients_cancelled_contract_i",
            gb.CL_NEGATIVE: "clients_contract_n",
            gb.CL_RES_PENDING: "reservations_pending",
            gb.CL_RES_ACTIVATE: "reservations_to_activate",
            gb.CL_RES_WITHDRAWN: "reservations_withdrawn",
        }
        for key in (*names.values(), "clients_in_buildings"):
            n[key] = 0
        for client in cl.clients(lay):
            n[names[client.facts.category]] += 1
            if client.spot.building:
                n["clients_in_buildings"] += 1
        n["clients"] = lay.n_clients
        n["clients_reservations"] = sum(n[names[c]] for c in gb.RESERVATIONS)
        n["clients_implanted"] = lay.n_clients - n["clients_reservations"]
        x_names = {
            gb.X_CREATE_PORT: "ixc_only_logins_create_with_port",
            gb.X_CREATE_NO_PORT: "ixc_only_logins_create_without_port",
            gb.X_UNKNOWN_BOX: "ixc_only_logins_on_ixc_only_box",
            gb.X_NO_BOX: "ixc_only_logins_without_box",
            gb.X_RADIO: "ixc_only_logins_radio",
            gb.X_INACTIVE: "ixc_only_logins_inactive",
        }
        for key in x_names.values():
            n[key] = 0
        for kind in lay.xlogin_kind:
            n[x_names[kind]] += 1
        n["ixc_only_logins"] = lay.n_xlogins
        for key in (
            "logins",
            "logins_fiber",
            "logins_radio",
            "logins_active",
            "logins_inactive",
            "logins_name_differs",
            "logins_coords_differ",
            "logins_port_differs",
            "logins_without_box",
            "logins_on_ixc_only_box",
            "onus",
            "onus_without_reading",
            "onus_reading_differs_from_ozmap",
            "contracts",
            "contracts_P",
            "contracts_A",
            "contracts_I",
            "contracts_N",
            "contracts_D",
            "online_S",
            "online_N",
            "online_SS",
            "online_empty",
        ):
            n[key] = 0
        ixc_only_boxes = {str(lay.ixc_only_box_id(b)) for b in range(lay.n_ixc_only_boxes)}
        for login in lg.logins(lay):
            self._count_login(n, login, ixc_only_boxes)
        return dict(n)

    @staticmethod
    def _count_login(n: collections.Counter[str], login: lg.Login, legacy: set[str]) -> None:
        facts = login.facts
        n["logins"] += 1
        n["logins_fiber" if login.fiber else "logins_radio"] += 1
        n["logins_inactive" if login.category in gb.INACTIVE_LOGIN else "logins_active"] += 1
        n[f"online_{lg.online(login) or 'empty'}"] += 1
        status = gb.CONTRACT_STATUS.get(login.category)
        if status is not None:
            n["contracts"] += 1
            n[f"contracts_{status}"] += 1
        if login.fiber:
            n["onus"] += 1
            if not lg.has_reading(login):
                n["onus_without_reading"] += 1
            elif login.ozmap and facts.oz_power != 0:
                n["onus_reading_differs_from_ozmap"] += 1
            if login.box == "0":
                n["logins_without_box"] += 1
            elif login.box in legacy:
                n["logins_on_ixc_only_box"] += 1
        if not login.ozmap:
            return
        if facts.name_differs:
            n["logins_name_differs"] += 1
        if login.fiber and facts.coords != 0:
            n["logins_coords_differ"] += 1
        if login.fiber and facts.port_differs and login.box != "0" and login.box not in legacy:
            n["logins_port_differs"] += 1
