"""IXC network rows of a sandbox world, shaped as the webservice list endpoint returns them (ixc.md section 4).

Every value is a string; empty references are ``"0"``, empty dates ``"0000-00-00"``. Ids are derived from the
layout, never allocated: project ``p`` → ``p + 1``; OLT ``o`` → ``o + 1``; PON ``p`` → ``p + 1``; a pre-existing
box → its first service splitter + 1 (building splitters: their own + 1); IXC-only boxes after the splitters;
OZmap client ``c``'s login, customer, contract and ONU → ``c + 1``; IXC-only logins after the clients.
Login-side tables (cliente, cliente_contrato, radusuarios, radpop_radio_cliente_fibra) live in
:mod:`~reconciler.sandbox.generate_clients`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from reconciler.sandbox import generate_base as gb
from reconciler.sandbox import generate_ozmap as oz
from reconciler.sandbox.generate_layout import SERVICE_PORTS, Layout

Row = dict[str, str]
STYLE_BLUE = "7eTTWpDR"
ZERO_DT = "0000-00-00 00:00:00"
ZERO_D = "0000-00-00"
CATALOGUE_DT = "2024-01-02 08:00:00"
SMALL = gb.SMALL


def _s(n: int) -> str:
    return SMALL[n] if 0 <= n < len(SMALL) else str(n)


def projects(lay: Layout) -> Iterator[Row]:
    """``df_projeto``: every OZmap project but the last, plus the IXC-only "Rede Legada"."""
    rows = [(p, lay.project_names[p], lay.project_centers[p]) for p in range(lay.n_regular_projects)]
    rows.append((lay.legacy_project_ixc_id() - 1, "Rede Legada", lay.project_centers[0]))
    for p, name, (lat, lng) in rows:
        yield {
            "id": _s(p + 1),
            "nome": name,
            "latitude": gb.dec(lat),
            "longitude": gb.dec(lng),
            "zoom": "14",
            "status": "A",
            "id_filial": "1",
            "cor_mapa": "#1E88E5",
            "ultima_atualizacao": CATALOGUE_DT,
        }


def pops(lay: Layout) -> Iterator[Row]:
    """``radpop``: one POP per project IXC knows."""
    for p in range(lay.n_regular_projects):
        lat, lng = lay.project_centers[p]
        yield {
            "id": _s(p + 1),
            "pop": f"POP {lay.project_names[p]}",
            "latitude": gb.dec(lat),
            "longitude": gb.dec(lng),
            "endereco": "",
            "id_cidade": "0",
            "id_projeto": _s(p + 1),
            "ativo": "S",
            "ultima_atualizacao": CATALOGUE_DT,
        }


def olt_in_ixc(lay: Layout, o: int) -> bool:
    """IXC has a transmitter with OLT ``o``'s IP."""
    return lay.olt_category[o] != gb.OLT_NO_IP


def radios(lay: Layout) -> Iterator[Row]:
    """Transmitters: the OZmap OLTs IXC knows (by IP), then two IXC-only radio transmitters."""
    for o in range(lay.n_olts):
        if not olt_in_ixc(lay, o):
            continue
        vendor, code, _serial = gb.VENDORS[lay.olt_vendor[o]]
        project = lay.olt_project[o]
        pop = project + 1 if project != lay.missing_project else 1
        yield {
            "id": _s(o + 1),
            "descricao": f"OLT-{vendor}-{o + 1}",
            "ip": lay.olt_ips[o],
            "id_pop": _s(pop),
            "ativo": "S",
            "fabricante_modelo": code,
            "conexao": "F",
            "porta": "22",
            "login": "admin",
            "senha": "sandbox-olt-password",
            "senha_hw": "",
            "senha_anm": "",
            "ultima_atualizacao": CATALOGUE_DT,
        }
    for j in range(2):
        yield {
            "id": _s(lay.n_olts + 1 + j),
            "descricao": f"RADIO-SETOR-{j + 1}",
            "ip": f"172.16.{j}.1",
            "id_pop": "1",
            "ativo": "S",
            "fabricante_modelo": "U",
            "conexao": "58",
            "porta": "22",
            "login": "admin",
            "senha": "sandbox-radio-password",
            "senha_hw": "",
            "senha_anm": "",
            "ultima_atualizacao": CATALOGUE_DT,
        }


def pon_ports(lay: Layout) -> Iterator[Row]:
    """``radpop_radio_porta_fibra``: the PONs of the OLTs IXC knows."""
    for p in range(lay.n_pons):
        o = lay.pon_olt[p]
        if not olt_in_ixc(lay, o):
            continue
        slot, number = lay.pon_local[p] // 16 + 1, lay.pon_local[p] % 16 + 1
        yield {
            "id": _s(p + 1),
            "id_pop_radio": _s(o + 1),
            "id_slot": _s(slot),
            "numero_pon": _s(number),
            "interface": f"0/{slot}/{number}",
            "descricao": f"PON {slot}/{number}",
            "ultima_atualizacao": CATALOGUE_DT,
        }


def _box(
    box_id: int,
    name: str,
    project: int,
    olt: int,
    capacity: int,
    lat: float,
    lng: float,
    obs: str,
    status: str,
    stamp: str,
) -> Row:
    return {
        "id": _s(box_id),
        "descricao": name,
        "tipo": "P",
        "id_projeto": _s(project),
        "id_transmissor": _s(olt),
        "id_interface": "0",
        "id_tecnologia": "0",
        "capacidade": _s(capacity),
        "latitude": gb.dec(lat),
        "longitude": gb.dec(lng),
        "codigo_estilo_caixa": STYLE_BLUE,
        "obs_caixa_ftth": obs,
        "status": status,
        "idx": "",
        "id_diretorio": "0",
        "id_mini_projeto": "0",
        "cep": "",
        "endereco": "",
        "numero": "",
        "bairro": "",
        "id_cidade": "0",
        "external_id": "",
        "ultima_atualizacao": stamp,
    }


DRIFT_CAPACITY = 1
DRIFT_LATITUDE = 2
DRIFT_OBSERVATION = 4
DRIFT_STATUS = 8
DRIFT_TRANSMITTER = 16


def drift_mask(lay: Layout, c: int) -> int:
    """Which fields of pre-existing box ``c`` (category B_PRE_DRIFT) differ in IXC; never 0."""
    return 1 + (gb.mix64(lay.container_salt + c) >> 13) % 31


def boxes(lay: Layout, pools: gb.TimePools) -> Iterator[Row]:
    """``rad_caixa_ftth``: pre-existing boxes (exact and drifted), the traps, building splitters, IXC-only boxes."""
    for c in range(lay.n_containers):
        category = lay.cont_category[c]
        if category not in (
            gb.B_PRE_EXACT,
            gb.B_PRE_DRIFT,
            gb.B_CASE_TRAP,
            gb.B_OTHER_PROJECT,
            gb.B_BUILDING_PRE,
        ):
            continue
        first = lay.cont_first[c]
        h = gb.mix64(lay.container_salt + c)
        stamp = pools.ixc[(h >> 7) & (gb.POOL_SIZE - 1)]
        lat, lng = lay.container_coords(c)
        project = lay.container_project(c) + 1
        olt = lay.service_olt(first) + 1
        if category == gb.B_BUILDING_PRE:
            building = oz.building_name(lay, c)
            for s in range(first, first + lay.cont_count[c]):
                name = f"{building} - Splitter {s - first + 1}"
                yield _box(
                    s + 1, name, project, lay.service_olt(s) + 1, SERVICE_PORTS, lat, lng, "", "A", stamp
                )
            continue
        name = oz.box_name(lay, c)
        capacity = SERVICE_PORTS * lay.cont_count[c]
        obs = oz.box_observation(lay, c)
        status = "A"
        if category == gb.B_CASE_TRAP:
            name = name.lower()
        elif category == gb.B_OTHER_PROJECT:
            project = lay.legacy_project_ixc_id()
        elif category == gb.B_PRE_DRIFT:
            drift = drift_mask(lay, c)
            if drift & DRIFT_CAPACITY:
                capacity -= 8
            if drift & DRIFT_LATITUDE:
                lat = round(lat + 0.000731, 6)
            if drift & DRIFT_OBSERVATION:
                obs = "Importada do sistema antigo"
            if drift & DRIFT_STATUS:
                status = "I"
            if drift & DRIFT_TRANSMITTER:
                olt = 0
        yield _box(lay.ixc_box_id(first), name, project, olt, capacity, lat, lng, obs, status, stamp)
    for b in range(lay.n_ixc_only_boxes):
        project = lay.ixc_only_box_project(b)
        lat, lng = lay.project_centers[project]
        yield _box(
            lay.ixc_only_box_id(b),
            f"CTO-LEGADO-{b + 1:04d}",
            project + 1,
            0,
            8,
            round(lat - 0.01 - b * 1e-4, 6),
            round(lng + 0.01, 6),
            "Rede antiga",
            "I" if b % 5 == 4 else "A",
            pools.ixc[b & (gb.POOL_SIZE - 1)],
        )


def condominiums(lay: Layout) -> Iterator[Row]:
    """``cliente_condominio``: one per OZmap building."""
    for c in lay.building_container:
        lat, lng = lay.container_coords(c)
        yield {
            "id": _s(lay.cont_number[c] + 1),
            "condominio": oz.building_name(lay, c),
            "endereco": oz.building_address(lay, c),
            "numero": "",
            "bairro": gb.NEIGHBOURHOODS[c % 8],
            "id_cidade": "1",
            "cep": "",
            "latitude": gb.dec(lat),
            "longitude": gb.dec(lng),
            "obs": "",
            "ultima_atualizacao": CATALOGUE_DT,
        }


TABLES: dict[str, Callable[[Layout, gb.TimePools], Iterator[Row]]] = {
    "df_projeto": lambda lay, _pools: projects(lay),
    "radpop": lambda lay, _pools: pops(lay),
    "radpop_radio": lambda lay, _pools: radios(lay),
    "radpop_radio_porta_fibra": lambda lay, _pools: pon_ports(lay),
    "rad_caixa_ftth": boxes,
    "cliente_condominio": lambda lay, _pools: condominiums(lay),
}
"""Network table name → row generator, in load order (referenced tables first)."""
