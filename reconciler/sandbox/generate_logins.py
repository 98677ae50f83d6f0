"""IXC login-side rows of a sandbox world: ``cliente``, ``cliente_contrato``, ``radusuarios`` and ONUs.

Each OZmap client with an IXC login (:func:`login_of`) and each IXC-only login (:func:`ixc_only_logins`)
becomes one :class:`Login`, from which the customer, contract, login and ONU rows are built. Ids: OZmap
client ``c`` → ``c + 1`` in all four tables; IXC-only login ``j`` → ``clients + 1 + j``. Every value is a string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from reconciler.sandbox import generate_base as gb
from reconciler.sandbox.generate_clients import Client, clients, onu_reading
from reconciler.sandbox.generate_layout import SERVICE_PORTS, Layout, near

Row = dict[str, str]
ZERO_DT = "0000-00-00 00:00:00"
ZERO_D = "0000-00-00"
SMALL = gb.SMALL
N_SMALL = len(SMALL)

IXC_TABLES = ("cliente", "cliente_contrato", "radusuarios", "radpop_radio_cliente_fibra")


class Login(NamedTuple):
    """One IXC login and what its customer, contract and ONU rows need."""

    id: str
    facts: gb.ClientFacts
    login: str
    name: str
    category: int  # gb.CL_* (IXC-only logins map onto the same codes)
    fiber: bool
    box: str
    port: str
    olt: str  # radpop_radio id or "0"
    pon: int  # PON index + 1 (radpop_radio_porta_fibra id) or 0
    project: str
    condo: str
    lat: str
    lng: str
    address: str
    mac: str
    ozmap: bool  # the login has an OZmap client
    created: int
    updated: int


def _s(n: int) -> str:
    return SMALL[n] if n < N_SMALL else str(n)


def login_of(lay: Layout, cl: Client) -> Login | None:
    """The IXC login of OZmap client ``cl`` (None for clients IXC does not know)."""
    facts, spot = cl.facts, cl.spot
    category = facts.category
    if category == gb.CL_NO_LOGIN:
        return None
    fiber = category != gb.CL_RADIO
    box = port = "0"
    if fiber and lay.box_preexists(spot.container):
        box = _s(lay.ixc_box_id(spot.s))
        number = lay.ixc_port(spot.s, cl.port)
        if facts.port_differs:
            number = (number + facts.h % 13) % SERVICE_PORTS + 1 if number <= SERVICE_PORTS else number - 1
        port = _s(number)
    elif fiber and facts.stale_box:
        box = _s(lay.ixc_only_box_id(cl.c % lay.n_ixc_only_boxes))
        port = _s(cl.c % 8 + 1)
    in_ixc = lay.olt_category[spot.olt] != gb.OLT_NO_IP and not lay.untraceable(spot.s)
    if facts.coords == 0:
        lat, lng = repr(cl.lat), repr(cl.lng)
    elif facts.coords == 1:
        lat, lng = repr(round(cl.lat + 0.0021, 6)), repr(round(cl.lng - 0.0013, 6))
    else:
        lat = lng = ""
    return Login(
        _s(cl.c + 1), facts, cl.code, gb.ixc_client_name(facts) if facts.name_differs else cl.name, category, fiber,
        box, port, _s(spot.olt + 1) if in_ixc else "0", spot.s // 16 + 1 if in_ixc else 0,
        _s(spot.project + 1) if spot.project != lay.missing_project else "0",
        _s(lay.cont_number[spot.container] + 1) if spot.building else "0", lat, lng, cl.address, cl.mac, True,
        cl.created, cl.updated,
    )  # fmt: skip


X_CATEGORY = {
    gb.X_CREATE_PORT: gb.CL_ACTIVE,
    gb.X_CREATE_NO_PORT: gb.CL_ACTIVE,
    gb.X_UNKNOWN_BOX: gb.CL_ACTIVE,
    gb.X_NO_BOX: gb.CL_ACTIVE,
    gb.X_RADIO: gb.CL_RADIO,
    gb.X_INACTIVE: gb.CL_CANCEL_I,
}


def ixc_only_logins(lay: Layout) -> Iterator[Login]:
    """Logins IXC has and OZmap lacks (kinds ``generate_base.X_*``), ids after the clients' logins."""
    x_salt = gb.salt(lay.seed, gb.H_XLOGIN)
    for j in range(lay.n_xlogins):
        kind, ref = lay.xlogin_kind[j], lay.xlogin_ref[j]
        facts = gb.client_facts(x_salt, j, ())
        box = port = olt = "0"
        pon = 0
        if kind in (gb.X_CREATE_PORT, gb.X_CREATE_NO_PORT):
            s = lay.cont_first[ref]
            box = _s(lay.ixc_box_id(s))
            port = _s(lay.ixc_port(s, lay.first_free_port(s))) if kind == gb.X_CREATE_PORT else "0"
            project = lay.container_project(ref)
            base = lay.container_micro(ref)
            olt, pon = _s(lay.service_olt(s) + 1), s // 16 + 1
        elif kind == gb.X_UNKNOWN_BOX:
            box, port = _s(lay.ixc_only_box_id(ref)), _s(j % 2 + 1)
            project = lay.ixc_only_box_project(ref)
            base = lay.project_micro[project]
        else:
            project = j % lay.n_regular_projects
            base = lay.project_micro[project]
        lat, lng = near(base, facts.h, False)
        created, updated = gb.TimePools.pair(facts.h >> 3)
        yield Login(
            str(lay.n_clients + 1 + j), facts, f"{gb.FIRST_ASCII[facts.first]}.{gb.LAST_ASCII[facts.last]}.x{j + 1}",
            gb.ixc_client_name(facts), X_CATEGORY[kind], kind != gb.X_RADIO, box, port, olt, pon, _s(project + 1),
            "0", repr(lat), repr(lng), f"{gb.STREETS[facts.h % len(gb.STREETS)]}, {(facts.h >> 9) % 3000 + 1}",
            gb.mac(facts.h), False, created, updated,
        )  # fmt: skip


def logins(lay: Layout) -> Iterator[Login]:
    """Every IXC login in id order: OZmap clients' logins, then the IXC-only ones."""
    for cl in clients(lay):
        lg = login_of(lay, cl)
        if lg is not None:
            yield lg
    yield from ixc_only_logins(lay)


def customer_row(pools: gb.TimePools, lg: Login) -> Row:
    """``cliente``: the customer behind the login (``razao`` = the ERP's name of the client)."""
    h = lg.facts.h
    return {
        "id": lg.id, "razao": lg.name, "fantasia": "", "tipo_pessoa": "F",
        "cnpj_cpf": f"{h % 1000:03d}.{(h >> 10) % 1000:03d}.{(h >> 20) % 1000:03d}-{(h >> 30) % 100:02d}",
        "ie_identidade": "", "ativo": "N" if lg.category in (gb.CL_CANCEL_I, gb.CL_CANCEL_NO_CONTRACT) else "S",
        "endereco": lg.address, "numero": "", "complemento": "", "bairro": gb.NEIGHBOURHOODS[h % 8],
        "cidade": "0", "uf": "0", "cep": "", "latitude": lg.lat, "longitude": lg.lng,
        "email": f"{lg.login}@example.com", "telefone_celular": f"(41) 9{(h >> 16) % 100_000_000:08d}",
        "fone": "", "id_condominio": lg.condo, "bloco": "", "apartamento": "",
        "data_cadastro": pools.ixc_date[lg.created], "data_nascimento": ZERO_D, "referencia": "", "obs": "",
        "filial_id": "1", "ultima_atualizacao": pools.ixc[lg.updated],
    }  # fmt: skip


INTERNET_STATUS = {"A": "A", "P": "AA", "I": "D", "N": "CA", "D": "D"}


def contract_row(pools: gb.TimePools, lg: Login) -> Row | None:
    """``cliente_contrato``, or None for a login without contract (``id_contrato = "0"``)."""
    status = gb.CONTRACT_STATUS.get(lg.category)
    if status is None:
        return None
    h = lg.facts.h
    day, last = pools.ixc_date[lg.created], pools.ixc_date[lg.updated]
    return {
        "id": lg.id, "id_cliente": lg.id, "id_vd_contrato": SMALL[1 + h % 4 if lg.fiber else 5],
        "contrato": gb.PLANS[h % 4 if lg.fiber else 4], "status": status,
        "status_internet": INTERNET_STATUS[status], "tipo": "I", "data": day,
        "data_ativacao": day if status in "AIN" else ZERO_D,
        "data_cancelamento": last if status == "I" else ZERO_D,
        "data_desistencia": last if status == "D" else ZERO_D,
        "motivo_cancelamento": "1" if status == "I" else "0", "obs_cancelamento": "",
        "endereco_padrao_cliente": "S", "endereco": "", "numero": "", "bairro": "", "cep": "", "cidade": "0",
        "latitude": "", "longitude": "", "id_condominio": lg.condo, "bloco": "", "apartamento": "",
        "id_filial": "1", "ultima_atualizacao": pools.ixc[lg.updated],
    }  # fmt: skip


def online(lg: Login) -> str:
    """``radusuarios.online``: inactive logins carry ``SS`` ("no status"), as on the measured install."""
    return "SS" if lg.category in gb.INACTIVE_LOGIN else lg.facts.online


def login_row(pools: gb.TimePools, lg: Login) -> Row:
    """``radusuarios``: the login (the seed's join key) with its box/port, coordinates and status."""
    facts = lg.facts
    h = facts.h
    state = online(lg)
    return {
        "id": lg.id, "id_cliente": lg.id, "id_contrato": "0" if lg.category == gb.CL_CANCEL_NO_CONTRACT else lg.id,
        "login": lg.login, "senha": f"{h & 0xFFFFFFFF:08x}",
        "ativo": "N" if lg.category in gb.INACTIVE_LOGIN else "S", "online": state,
        "tipo_conexao_mapa": "F" if lg.fiber else "58", "autenticacao": "L", "id_caixa_ftth": lg.box,
        "ftth_porta": lg.port, "id_transmissor": lg.olt, "id_porta_transmissor": _s(lg.pon),
        "id_df_projeto": lg.project, "splitter": "0", "latitude": lg.lat, "longitude": lg.lng,
        "endereco_padrao_cliente": "S", "endereco": lg.address, "numero": "", "complemento": "",
        "bairro": gb.NEIGHBOURHOODS[h % 8], "cidade": "0", "cep": "", "id_condominio": lg.condo, "bloco": "",
        "apartamento": "", "mac": gb.mac(h, "E0:D4:62"), "onu_mac": lg.mac if lg.fiber else "", "ip": "",
        "concentrador": "1", "id_grupo": "1",
        "sinal_ultimo_atendimento": f"{onu_reading(facts):.2f}" if (h >> 60) & 1 else "",
        "ultima_conexao_inicial": pools.ixc[lg.created] if state in ("S", "N") else ZERO_DT,
        "ultima_conexao_final": pools.ixc[lg.updated] if state == "N" else ZERO_DT,
        "motivo_desconexao": "", "id_filial": "1", "obs": "", "ultima_atualizacao": pools.ixc[lg.updated],
    }  # fmt: skip


def has_reading(lg: Login) -> bool:
    """The ONU reports a power reading (reservations and inactive logins never do)."""
    return not lg.facts.power_zero and lg.category in (gb.CL_ACTIVE, gb.CL_NEGATIVE)


def onu_row(lay: Layout, pools: gb.TimePools, lg: Login) -> Row | None:
    """``radpop_radio_cliente_fibra``: the ONU of a fiber login with its reading, or None (radio)."""
    if not lg.fiber:
        return None
    facts = lg.facts
    h = facts.h
    reading = has_reading(lg)
    slot = pon = ponid = ""
    if lg.pon:
        local = lay.pon_local[lg.pon - 1]
        slot, pon = SMALL[local // 16 + 1], SMALL[local % 16 + 1]
        ponid = f"1/{slot}/{pon}"
    if reading:
        rx, tx = f"{onu_reading(facts):.2f}", f"{2.0 + (h >> 3) % 50 / 100:.2f}"
        temperature, voltage, stamp = (
            f"{40 + (h >> 7) % 15}.00",
            "3.30",
            pools.ixc[(h >> 17) & (gb.POOL_SIZE - 1)],
        )
    else:
        rx = tx = temperature = voltage = "0.00"
        stamp = ZERO_DT
    return {
        "id": lg.id, "id_login": lg.id,
        "id_contrato": "0" if lg.category == gb.CL_CANCEL_NO_CONTRACT else lg.id, "id_transmissor": lg.olt,
        "nome": lg.login, "id_caixa_ftth": lg.box, "porta_ftth": lg.port, "mac": lg.mac,
        "serial_number": f"ZTEG{h & 0xFFFFFFFF:08X}", "ponid": ponid, "slotno": slot, "ponno": pon,
        "onu_numero": SMALL[(h >> 5) % 64 + 1], "id_radpop_radio_porta": _s(lg.pon), "sinal_rx": rx,
        "sinal_tx": tx, "temperatura": temperature, "voltagem": voltage, "data_sinal": stamp,
        "status_potencia": "regular" if reading else "indefinido",
        "causa_ultima_queda": "dying-gasp" if (h >> 21) % 5 == 0 else "-", "latitude": lg.lat,
        "longitude": lg.lng, "id_condominio": lg.condo, "id_projeto": lg.project, "radpop_estrutura": "N",
        "ultima_atualizacao": pools.ixc[lg.updated],
    }  # fmt: skip


def ixc_rows(lay: Layout, pools: gb.TimePools, table: str) -> Iterator[Row]:
    """One login-side IXC table, in id order."""
    for lg in logins(lay):
        if table == "cliente":
            yield customer_row(pools, lg)
        elif table == "radusuarios":
            yield login_row(pools, lg)
        else:
            row = contract_row(pools, lg) if table == "cliente_contrato" else onu_row(lay, pools, lg)
            if row is not None:
                yield row
