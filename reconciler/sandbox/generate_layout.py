"""The skeleton of a sandbox world: who feeds whom, which box sits where, which ports are taken.

The skeleton is a handful of compact ``array``s (a few bytes per service splitter, nothing per client), built
in one seeded pass. Rows are produced later from it plus per-index hashes (``generate_base``), so the memory of
a loaded sandbox is the stores, not the generator.

Topology convention (shared with the OZmap sandbox):

    OLT ─connectables→ Slot ─connectables→ PON ─connectables→ feed fibres
    feed fibre = input[0] of a network splitter (1x8, isDrop false) inside a CE box
    network splitter output[j] = distribution fibre = input[0] of a service splitter (1x16, isDrop true)
    service splitter output[i] = the drop fibre of the client on port i+1, or null

Index arithmetic: service splitter ``s`` hangs on network splitter (group) ``s // 8``, output ``s % 8``; group
``k`` hangs on PON ``k // 2``. Containers (CTO boxes, buildings) take consecutive service splitters; clients are
numbered along service splitters and ports.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from typing import Final

from reconciler.sandbox import generate_base as gb

SPLITTER_OUTPUTS: Final = 8  # network splitter 1x8
SERVICE_PORTS: Final = 16  # service splitter 1x16
GROUPS_PER_PON: Final = 2
PONS_PER_SLOT: Final = 16
SLOTS_PER_OLT: Final = 4
PONS_PER_OLT: Final = PONS_PER_SLOT * SLOTS_PER_OLT

# Forced first occurrences, so even small worlds exercise every case.
FORCED_PON_CATEGORIES: Final = (gb.OLT_OK, gb.OLT_NO_IP, gb.OLT_NO_PROJECT)
FORCED_BOX_CATEGORIES: Final = (
    gb.B_PRE_EXACT,
    gb.B_PRE_DRIFT,
    gb.B_NEW,
    gb.B_CASE_TRAP,
    gb.B_IN_PROJECT,
    gb.B_OTHER_PROJECT,
    gb.B_UNTRACEABLE,
    gb.B_NO_COORDS,
)
FORCED_KINDS: Final = {3: gb.C_BUILDING, 5: gb.C_CTO2, 7: gb.C_EMPTY, 9: gb.C_BUILDING}
FORCED_XLOGINS: Final = (gb.X_CREATE_PORT, gb.X_CREATE_NO_PORT)
FORCED_CLIENTS: Final = (
    gb.CL_ACTIVE,
    gb.CL_ACTIVE,
    gb.CL_ACTIVE,
    gb.CL_RES_ACTIVATE,
    gb.CL_CANCEL_I,
    gb.CL_RES_WITHDRAWN,
    gb.CL_CANCEL_NO_CONTRACT,
    gb.CL_RADIO,
    gb.CL_RES_PENDING,
    gb.CL_NEGATIVE,
    gb.CL_NO_LOGIN,
)


class Layout:
    """The seeded skeleton of a world of ``scale`` ≈ service boxes + clients."""

    def __init__(self, *, seed: int, scale: int) -> None:
        if scale < 1:
            raise ValueError("scale must be >= 1")
        self.seed = seed
        self.scale = scale
        self.rng = random.Random(f"reconciler-sandbox:{seed}")
        self.client_salt = gb.salt(seed, gb.H_CLIENT)
        self.container_salt = gb.salt(seed, gb.H_CONTAINER)
        self.prefix = gb.oid_prefix(seed)
        self.kind_prefix = tuple(f"{self.prefix}{kind:02x}" for kind in range(256))
        self.drop_type = self.oid(gb.K_CABLE_TYPE, 0)
        self._projects()
        self.n_service = max(8, scale // 10)
        self.n_groups = -(-self.n_service // SPLITTER_OUTPUTS)
        self.n_pons = -(-self.n_groups // GROUPS_PER_PON)
        self._olts()
        self._containers()
        self._ixc_only()

    # ---------------------------------------------------------------------------------------------- projects
    def _projects(self) -> None:
        n = max(2, self.scale // 50_000)
        self.n_projects = n
        names: list[str] = []
        centers: list[tuple[float, float]] = []
        for p in range(n):
            city, lat, lng = gb.CITIES[p % len(gb.CITIES)]
            lap = p // len(gb.CITIES)
            names.append(city if lap == 0 else f"{city} {lap + 1}")
            centers.append((lat + 0.3 * lap, lng + 0.3 * lap))
        self.project_names = tuple(names)
        self.project_micro = tuple((round(lat * 1e6), round(lng * 1e6)) for lat, lng in centers)
        self.project_centers = tuple((lat / 1e6, lng / 1e6) for lat, lng in self.project_micro)
        self.missing_project = n - 1  # the OZmap project IXC does not have
        self.n_regular_projects = n - 1
        self.project_ids = tuple(self.oid(gb.K_PROJECT, p) for p in range(n))

    # ---------------------------------------------------------------------------------------------- OLTs
    def _olts(self) -> None:
        rng = self.rng
        self.pon_olt = array("i")
        self.pon_local = array("i")  # position of the PON on its OLT: slot = local // 16, number = local % 16
        self.olt_category = bytearray()
        self.olt_project = array("i")
        self.olt_pons: list[list[int]] = []
        current: dict[int, int] = {}
        for p in range(self.n_pons):
            if p < len(FORCED_PON_CATEGORIES):
                cat = FORCED_PON_CATEGORIES[p]
            else:
                r = rng.random()
                cat = gb.OLT_NO_IP if r < 0.03 else gb.OLT_NO_PROJECT if r < 0.05 else gb.OLT_OK
            olt = current.get(cat, -1)
            if olt < 0 or len(self.olt_pons[olt]) >= PONS_PER_OLT:
                olt = len(self.olt_pons)
                current[cat] = olt
                self.olt_pons.append([])
                self.olt_category.append(cat)
                same = sum(1 for c in self.olt_category if c == cat) - 1
                if cat == gb.OLT_NO_PROJECT:
                    self.olt_project.append(self.missing_project)
                else:
                    self.olt_project.append(same % self.n_regular_projects)
            self.pon_olt.append(olt)
            self.pon_local.append(len(self.olt_pons[olt]))
            self.olt_pons[olt].append(p)
        self.n_olts = len(self.olt_pons)
        self.olt_ips = tuple(
            f"10.{self.olt_project[o] % 250 + 1}.{(o // 250) % 256}.{o % 250 + 2}" for o in range(self.n_olts)
        )
        self.olt_vendor = tuple(
            gb.mix64(gb.salt(self.seed, gb.H_OLT) + o) % len(gb.VENDORS) for o in range(self.n_olts)
        )

    def olt_slots(self, o: int) -> int:
        """Number of slots OLT ``o`` has (enough for its PONs)."""
        return -(-len(self.olt_pons[o]) // PONS_PER_SLOT)

    def slot_index(self, o: int, local_slot: int) -> int:
        """Global slot number (ids) of slot ``local_slot`` of OLT ``o``."""
        return o * SLOTS_PER_OLT + local_slot

    def group_olt(self, k: int) -> int:
        """The OLT feeding network splitter ``k``."""
        return self.pon_olt[k // GROUPS_PER_PON]

    def service_olt(self, s: int) -> int:
        """The OLT at the end of service splitter ``s``'s chain (even when ``s`` itself is disconnected)."""
        return self.pon_olt[(s // SPLITTER_OUTPUTS) // GROUPS_PER_PON]

    def group_project(self, k: int) -> int:
        """The project of network splitter ``k`` (its OLT's)."""
        return self.olt_project[self.group_olt(k)]

    # ---------------------------------------------------------------------------------------------- containers
    def _containers(self) -> None:
        rng = self.rng
        self.cont_kind = bytearray()
        self.cont_category = bytearray()
        self.cont_first = array("i")  # first service splitter
        self.cont_count = bytearray()  # number of service splitters
        self.cont_number = array("i")  # box number (CTO kinds) or building number
        self.cont_xlogin = bytearray()  # IXC-only login attached to the box (X_CREATE_*) or 0
        self.box_container = array("i")  # CTO box number → container
        self.building_container = array("i")
        self.ss_container = array("i")
        self.ss_occupied = array("H")  # bit i set = port i+1 holds a client
        self.ss_blocked = array("H")
        self.ss_client_base = array("q", [0])
        pending_box = list(FORCED_BOX_CATEGORIES)
        pending_x = list(FORCED_XLOGINS)
        s = 0
        while s < self.n_service:
            c = len(self.cont_kind)
            olt_cat = self.olt_category[self.service_olt(s)]
            kind = FORCED_KINDS.get(c)
            if kind is None or (kind == gb.C_BUILDING and olt_cat != gb.OLT_OK):
                r = rng.random()
                kind = (
                    gb.C_EMPTY
                    if r < 0.01
                    else gb.C_BUILDING
                    if r < 0.035 and olt_cat == gb.OLT_OK
                    else gb.C_CTO2
                    if r < 0.075
                    else gb.C_CTO
                )
            count = (1, 2, 0, 0)[kind] if kind != gb.C_BUILDING else rng.randint(1, 3)
            count = min(count, self.n_service - s)
            if kind == gb.C_CTO2 and count < 2:
                kind = gb.C_CTO
            category = self._category(kind, olt_cat, pending_box)
            xlogin = 0
            if category in (gb.B_PRE_EXACT, gb.B_PRE_DRIFT):
                if pending_x:
                    xlogin = pending_x.pop(0)
                else:
                    r = rng.random()
                    xlogin = gb.X_CREATE_PORT if r < 0.10 else gb.X_CREATE_NO_PORT if r < 0.15 else 0
            self.cont_kind.append(kind)
            self.cont_category.append(category)
            self.cont_first.append(s)
            self.cont_count.append(count)
            self.cont_xlogin.append(xlogin)
            if kind == gb.C_BUILDING:
                self.cont_number.append(len(self.building_container))
                self.building_container.append(c)
            else:
                self.cont_number.append(self.n_groups + len(self.box_container))
                self.box_container.append(c)
            for _ in range(count):
                self._ports(c, empty=category == gb.B_IN_PROJECT)
            s += count
        self.n_containers = len(self.cont_kind)
        self.n_clients = self.ss_client_base[-1]

    def _category(self, kind: int, olt_cat: int, pending: list[int]) -> int:
        if kind == gb.C_EMPTY:
            return gb.B_NO_SPLITTER
        if kind == gb.C_BUILDING:
            return gb.B_BUILDING_PRE if self.rng.random() < 0.3 else gb.B_BUILDING_NEW
        if olt_cat == gb.OLT_NO_IP:
            return gb.B_MISSING_OLT
        if olt_cat == gb.OLT_NO_PROJECT:
            return gb.B_MISSING_PROJECT
        if pending:
            return pending.pop(0)
        r = self.rng.random()
        for category, share in (
            (gb.B_IN_PROJECT, 0.05),
            (gb.B_NO_COORDS, 0.003),
            (gb.B_UNTRACEABLE, 0.02),
            (gb.B_PRE_EXACT, 0.14),
            (gb.B_PRE_DRIFT, 0.14),
            (gb.B_CASE_TRAP, 0.01),
            (gb.B_OTHER_PROJECT, 0.01),
        ):
            if r < share:
                return category
            r -= share
        return gb.B_NEW

    def _ports(self, c: int, *, empty: bool) -> None:
        rng = self.rng
        occupied = 0 if empty else rng.randint(4, 14)
        blocked = min(rng.randint(1, 2) if rng.random() < 0.25 else 0, SERVICE_PORTS - 1 - occupied)
        ports = rng.sample(range(SERVICE_PORTS), occupied + blocked)
        occ_mask = 0
        for port in ports[:occupied]:
            occ_mask |= 1 << port
        blk_mask = 0
        for port in ports[occupied:]:
            blk_mask |= 1 << port
        self.ss_container.append(c)
        self.ss_occupied.append(occ_mask)
        self.ss_blocked.append(blk_mask)
        self.ss_client_base.append(self.ss_client_base[-1] + occupied)

    # ---------------------------------------------------------------------------------------------- IXC only
    def _ixc_only(self) -> None:
        """IXC-only boxes and the IXC-only logins (kinds X_*), numbered after the OZmap clients' logins."""
        n_cto = len(self.box_container)
        self.n_ixc_only_boxes = max(2, round(0.02 * n_cto))
        self.xlogin_kind = bytearray()
        self.xlogin_ref = array("i")  # container (X_CREATE_*) or IXC-only box number (X_UNKNOWN_BOX)
        for c in range(self.n_containers):
            if self.cont_xlogin[c]:
                self.xlogin_kind.append(self.cont_xlogin[c])
                self.xlogin_ref.append(c)
        for b in range(self.n_ixc_only_boxes):
            for _ in range(2):
                self.xlogin_kind.append(gb.X_UNKNOWN_BOX)
                self.xlogin_ref.append(b)
        n_misc = max(1, self.n_clients // 300)
        for kind in (gb.X_NO_BOX, gb.X_RADIO, gb.X_INACTIVE):
            for _ in range(n_misc):
                self.xlogin_kind.append(kind)
                self.xlogin_ref.append(-1)
        self.n_xlogins = len(self.xlogin_kind)

    # ---------------------------------------------------------------------------------------------- helpers
    def oid(self, kind: int, n: int) -> str:
        """The OZmap ObjectId of entity ``n`` of ``kind`` (``generate_base.K_*``)."""
        return f"{self.kind_prefix[kind]}{n:010x}"

    def container_id(self, c: int) -> str:
        """OZmap id of container ``c`` (a box, or a building)."""
        kind = gb.K_BUILDING if self.cont_kind[c] == gb.C_BUILDING else gb.K_BOX
        return self.oid(kind, self.cont_number[c])

    def container_project(self, c: int) -> int:
        """Project index of container ``c``: its first splitter's OLT's project."""
        s = min(self.cont_first[c], self.n_service - 1)
        return self.group_project(s // SPLITTER_OUTPUTS)

    def container_micro(self, c: int) -> tuple[int, int]:
        """``(lat, lng)`` of container ``c`` in micro-degrees: within ~9 km of its project's city."""
        h = gb.mix64(self.container_salt + c)
        lat, lng = self.project_micro[self.container_project(c)]
        return lat + (h & 0x3FFFF) % 160_001 - 80_000, lng + ((h >> 20) & 0x3FFFF) % 160_001 - 80_000

    def container_coords(self, c: int) -> tuple[float, float]:
        """``(lat, lng)`` of container ``c`` in degrees (6 decimals)."""
        lat, lng = self.container_micro(c)
        return lat / 1e6, lng / 1e6

    def group_coords(self, k: int) -> tuple[float, float]:
        """``(lat, lng)`` of the CE box of group ``k``."""
        h = gb.mix64(gb.salt(self.seed, gb.H_GROUP) + k)
        lat, lng = self.project_micro[self.group_project(k)]
        return (lat + (h & 0x3FFFF) % 160_001 - 80_000) / 1e6, (
            lng + ((h >> 20) & 0x3FFFF) % 160_001 - 80_000
        ) / 1e6

    def client_facts(self, c: int) -> gb.ClientFacts:
        """Everything both systems agree on about client ``c``."""
        return gb.client_facts(self.client_salt, c, FORCED_CLIENTS)

    def client_splitter(self, c: int) -> int:
        """The service splitter client ``c`` is connected to."""
        return bisect_right(self.ss_client_base, c) - 1

    def untraceable(self, s: int) -> bool:
        """True when service splitter ``s``'s input is not connected (its box's first splitter, by design)."""
        c = self.ss_container[s]
        return self.cont_category[c] == gb.B_UNTRACEABLE and self.cont_first[c] == s

    def splitter_position(self, s: int) -> int:
        """0-based position of service splitter ``s`` inside its container ("Splitter 1" = 0)."""
        return s - self.cont_first[self.ss_container[s]]

    def ixc_port(self, s: int, port: int) -> int:
        """IXC ``ftth_porta`` of port ``port`` (1-based) of service splitter ``s``.

        A CTO box is one IXC box whose ports run across its splitters (splitter 2 port 1 = port 17); a
        building splitter is its own IXC box.
        """
        c = self.ss_container[s]
        if self.cont_kind[c] == gb.C_BUILDING:
            return port
        return self.splitter_position(s) * SERVICE_PORTS + port

    def first_free_port(self, s: int) -> int:
        """First port (1-based) of service splitter ``s`` neither occupied nor blocked."""
        taken = self.ss_occupied[s] | self.ss_blocked[s]
        for i in range(SERVICE_PORTS):
            if not taken >> i & 1:
                return i + 1
        raise AssertionError("every splitter keeps a free port by construction")

    def box_preexists(self, c: int) -> bool:
        """Container ``c``'s splitters are boxes that already exist in IXC (linked on the first sync)."""
        return self.cont_category[c] in (gb.B_PRE_EXACT, gb.B_PRE_DRIFT, gb.B_BUILDING_PRE)

    def ixc_box_id(self, s: int) -> int:
        """IXC ``rad_caixa_ftth`` id used for the box of service splitter ``s`` when it pre-exists in IXC.

        CTO boxes use their first splitter's number, building splitters their own; IXC-only boxes come after.
        """
        c = self.ss_container[s]
        if self.cont_kind[c] == gb.C_BUILDING:
            return s + 1
        return self.cont_first[c] + 1

    def ixc_only_box_id(self, b: int) -> int:
        """IXC id of IXC-only box ``b``."""
        return self.n_service + 1 + b

    def ixc_only_box_project(self, b: int) -> int:
        """Project index of IXC-only box ``b`` (a project IXC knows)."""
        return b % self.n_regular_projects

    def legacy_project_ixc_id(self) -> int:
        """The IXC-only project ("Rede Legada")."""
        return self.n_projects + 1


def near(base: tuple[int, int], h: int, same: bool) -> tuple[float, float]:
    """A point ~150 m around ``base`` (micro-degrees) picked by hash ``h`` (``base`` itself when ``same``)."""
    if same:
        return base[0] / 1e6, base[1] / 1e6
    return (base[0] + (h >> 8) % 3001 - 1500) / 1e6, (base[1] + (h >> 24) % 3001 - 1500) / 1e6
