"""Building blocks of the sandbox world generator: hashing, ids, clocks, names and the category codes.

Everything is a pure function of ``(seed, index)``: the generator never stores per-client state, it recomputes
a client's attributes from a 64-bit hash of its index whenever a row needs them (SplitMix64 finaliser, no
``hash()`` of strings, so values are identical across processes). Strings that repeat across many rows
(timestamps, zero dates, small integers) come from shared pools so a million rows do not hold a million copies.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, NamedTuple

MASK64: Final = (1 << 64) - 1
GOLDEN: Final = 0x9E3779B97F4A7C15


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread 64-bit hash of ``x``."""
    x = (x + GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def salt(seed: int, purpose: int) -> int:
    """A per-seed, per-purpose offset: ``mix64(salt(seed, P) + i)`` is entity ``i``'s hash for purpose ``P``."""
    return mix64(mix64(seed & MASK64) ^ (purpose * GOLDEN & MASK64))


# Purposes of the hash streams (any distinct constants).
H_CLIENT: Final = 1
H_CLIENT2: Final = 2
H_CONTAINER: Final = 3
H_GROUP: Final = 4
H_XLOGIN: Final = 5
H_OLT: Final = 6
H_TIME: Final = 7

# OZmap ObjectId "kind" bytes: ids are <12 hex of the seed><2 hex kind><10 hex index>, sorted by index.
K_PROJECT: Final = 0x01
K_BOX_TYPE: Final = 0x02
K_SPLITTER_TYPE: Final = 0x03
K_CABLE_TYPE: Final = 0x04
K_OLT: Final = 0x05
K_SLOT: Final = 0x06
K_PON: Final = 0x07
K_BOX: Final = 0x08
K_BUILDING: Final = 0x09
K_SPLITTER: Final = 0x0A
K_PROPERTY: Final = 0x0B
K_CLIENT: Final = 0x0C
K_CABLE: Final = 0x0D
K_FIBER_FEED: Final = 0x10
K_FIBER_DIST: Final = 0x11
K_FIBER_DROP: Final = 0x12
K_USER: Final = 0x14


def oid_prefix(seed: int) -> str:
    """The 12 hex digits every OZmap id of this seed starts with (a 2023-ish ObjectId timestamp + seed bits)."""
    h = mix64(seed & MASK64)
    return f"{0x64000000 + (h & 0x00FFFFFF):08x}{(h >> 24) & 0xFFFF:04x}"


# PON / OLT categories.
OLT_OK: Final = 0
OLT_NO_IP: Final = 1  # the OLT's IP is not registered in IXC
OLT_NO_PROJECT: Final = 2  # the OLT (and every box it feeds) is in the OZmap project missing from IXC

# Container kinds (a container holds service splitters: a CTO box or a building).
C_CTO: Final = 0
C_CTO2: Final = 1  # CTO with two service splitters (capacity 32)
C_BUILDING: Final = 2  # condominium with 1-3 service splitters
C_EMPTY: Final = 3  # CTO box with no splitter at all (not a service box)

# Box categories (exclusive) for CTO containers; B_* for buildings.
B_NEW: Final = 0  # eligible, not in IXC: the first sync creates it
B_PRE_EXACT: Final = 1  # pre-exists in IXC by name + project with the same fields: link only
B_PRE_DRIFT: Final = 2  # pre-exists by name + project with drifted fields: link and update
B_CASE_TRAP: Final = 3  # IXC holds the same name in another letter case: must not match → create
B_OTHER_PROJECT: Final = 4  # IXC holds the same name in another project: must not match → create
B_IN_PROJECT: Final = 5  # implanted false ("in project"): not synced
B_NO_COORDS: Final = 6  # coords missing: fails the rule's checks
B_UNTRACEABLE: Final = 7  # first service splitter's input not connected: no OLT
B_MISSING_OLT: Final = 8  # fed by an OLT whose IP IXC does not know
B_MISSING_PROJECT: Final = 9  # in the OZmap project that IXC lacks
B_NO_SPLITTER: Final = 10  # empty CTO
B_BUILDING_NEW: Final = 11
B_BUILDING_PRE: Final = 12  # every splitter of the building pre-exists in IXC as "<building> - <splitter>"

# Client categories (OZmap client + its IXC login/contract).
CL_ACTIVE: Final = 0  # implanted; login F, ativo S, contract A
CL_NO_LOGIN: Final = 1  # implanted; no IXC login at all
CL_RADIO: Final = 2  # implanted; login tipo 58 (radio): ignored by the fiber flows
CL_CANCEL_NO_CONTRACT: Final = 3  # implanted; login ativo N, id_contrato "0": cancellation
CL_CANCEL_I: Final = 4  # implanted; login ativo N, contract I: cancellation
CL_NEGATIVE: Final = 5  # implanted; login ativo S, contract N (credit-listed): no status/activation
CL_RES_PENDING: Final = 6  # reservation; login ativo S, contract P: nothing yet
CL_RES_ACTIVATE: Final = 7  # reservation; login ativo S, contract A: activation
CL_RES_WITHDRAWN: Final = 8  # reservation; login ativo N, contract D: withdrawal

CLIENT_SHARES: Final = (  # per 10 000, in category order
    (CL_ACTIVE, 8400),
    (CL_NO_LOGIN, 100),
    (CL_RADIO, 400),
    (CL_CANCEL_NO_CONTRACT, 100),
    (CL_CANCEL_I, 100),
    (CL_NEGATIVE, 100),
    (CL_RES_PENDING, 300),
    (CL_RES_ACTIVATE, 300),
    (CL_RES_WITHDRAWN, 200),
)
RESERVATIONS: Final = frozenset({CL_RES_PENDING, CL_RES_ACTIVATE, CL_RES_WITHDRAWN})
CONTRACT_STATUS: Final = {
    CL_ACTIVE: "A",
    CL_RADIO: "A",
    CL_CANCEL_I: "I",
    CL_NEGATIVE: "N",
    CL_RES_PENDING: "P",
    CL_RES_ACTIVATE: "A",
    CL_RES_WITHDRAWN: "D",
}
INACTIVE_LOGIN: Final = frozenset({CL_CANCEL_NO_CONTRACT, CL_CANCEL_I, CL_RES_WITHDRAWN})

# IXC-only logins (no OZmap client).
X_CREATE_PORT: Final = 1  # fiber, active, on a box that will be linked, with a free port: create with port
X_CREATE_NO_PORT: Final = 2  # same without port ("0"): create on the first free port (option)
X_UNKNOWN_BOX: Final = 3  # fiber, on an IXC-only box: not created (box unknown to OZmap)
X_NO_BOX: Final = 4  # fiber, id_caixa_ftth "0": not created
X_RADIO: Final = 5  # radio (58): never created
X_INACTIVE: Final = 6  # fiber, ativo N, contract I: nothing to do


class ClientFacts(NamedTuple):
    """Everything about client ``c`` that both systems' rows must agree on, derived from its hash."""

    category: int
    first: int  # index into FIRST_NAMES
    last: int  # index into LAST_NAMES
    name_differs: bool  # IXC razao is not the OZmap name ("ERP name wins")
    coords: int  # 0 same as OZmap property, 1 shifted, 2 empty in IXC
    port_differs: bool  # IXC ftth_porta stale (only meaningful when the box pre-exists in IXC)
    stale_box: bool  # IXC points to a legacy IXC-only box (only when the OZmap box does not pre-exist)
    online: str  # radusuarios.online
    oz_status: int  # OZmap ftth-client status 0/1
    power: int  # ONU reading in centi-dB below -14 (sinal_rx = -14 - power/100)
    power_zero: bool  # ONU sinal_rx "0.00" (no reading)
    oz_power: int  # 0 OZmap potencyRead equals the ONU reading, 1 differs, 2 null
    h: int  # the raw hash, for ids that only need to look random (mac, serial, address)


ONLINE_VALUES: Final = ("S",) * 55 + ("N",) * 15 + ("SS",) * 25 + ("",) * 5


def _category_table() -> bytes:
    table = bytearray()
    for category, share in CLIENT_SHARES:
        table.extend([category] * share)
    assert len(table) == 10_000
    return bytes(table)


CATEGORY_BY_ROLL: Final = _category_table()


def client_facts(client_salt: int, c: int, forced: tuple[int, ...]) -> ClientFacts:
    """Facts of client ``c``; the first ``len(forced)`` clients take their category from ``forced``."""
    h = mix64(client_salt + c)
    h2 = ((h * 0x2545F4914F6CDD1D) & MASK64) ^ (h >> 29)
    category = forced[c] if c < len(forced) else CATEGORY_BY_ROLL[h % 10_000]
    coord_roll = (h2 >> 19) % 100
    return ClientFacts(
        category,
        h2 % len(FIRST_NAMES),
        (h2 >> 6) % len(LAST_NAMES),
        (h2 >> 12) % 100 < 10 or c == 0,
        1 if coord_roll < 10 or c == 1 else 2 if coord_roll < 12 else 0,
        (h2 >> 26) % 100 < 5 or c == 2,
        (h2 >> 33) % 100 < 2,
        "SS" if category in INACTIVE_LOGIN else ONLINE_VALUES[(h2 >> 40) % 100],
        1 if (h2 >> 47) % 100 < 15 else 0,
        (h >> 20) % 1200,
        (h2 >> 54) % 100 < 30,
        (h >> 40) % 4 % 3,
        h,
    )


# --------------------------------------------------------------------------------------------------------------
# Time: a fixed anchor keeps the world identical on every run; everything happened in the year before it.

ANCHOR: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ANCHOR_MS: Final = int(ANCHOR.timestamp() * 1000)
YEAR_MS: Final = 365 * 86_400_000
BRT: Final = dt.timezone(dt.timedelta(hours=-3))


_DAYS: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as OZmap writes them: ``2025-03-05T14:02:11.517Z`` (dates cached per day)."""
    day, rest = divmod(ms, 86_400_000)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = f"{dt.datetime.fromtimestamp(day * 86_400, dt.UTC):%Y-%m-%d}"
    seconds, milli = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


def ixc_datetime(ms: int) -> str:
    """Epoch milliseconds as IXC writes them: server-local (UTC-3) ``YYYY-MM-DD HH:MM:SS``."""
    return f"{dt.datetime.fromtimestamp(ms // 1000, BRT):%Y-%m-%d %H:%M:%S}"


POOL_BITS: Final = 14
POOL_SIZE: Final = 1 << POOL_BITS


class TimePools:
    """Sorted pools of timestamps shared by the high-volume rows (clients, properties, drops, IXC rows)."""

    def __init__(self, seed: int) -> None:
        s = salt(seed, H_TIME)
        moments = sorted(ANCHOR_MS - mix64(s + i) % YEAR_MS for i in range(POOL_SIZE))
        self.iso: tuple[str, ...] = tuple(iso_ms(m) for m in moments)
        self.ixc: tuple[str, ...] = tuple(ixc_datetime(m) for m in moments)
        self.ixc_date: tuple[str, ...] = tuple(v[:10] for v in self.ixc)

    @staticmethod
    def pair(h: int) -> tuple[int, int]:
        """Two pool indexes ``created <= updated`` picked by hash ``h``."""
        created = h & (POOL_SIZE - 1)
        updated = created + (h >> POOL_BITS) % (POOL_SIZE - created)
        return created, updated


SMALL: Final = tuple(str(i) for i in range(4096))
"""Shared string forms of small integers (ports, ids of small tables)."""


def dec(x: float) -> str:
    """An IXC decimal text for a coordinate already rounded to 6 places (``-25.428356``)."""
    return repr(x)


# --------------------------------------------------------------------------------------------------------------
# Names. Logins use the ASCII forms.


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


CITIES: Final = (
    ("Chicago", 41.878100, -87.629800),
    ("Curitiba", -25.428400, -49.273300),
    ("Florianópolis", -27.595400, -48.548000),
    ("Porto Alegre", -30.034600, -51.217700),
    ("São Paulo", -23.550500, -46.633300),
    ("Campinas", -22.909900, -47.062600),
    ("Londrina", -23.304500, -51.169600),
    ("Maringá", -23.420500, -51.933300),
    ("Joinville", -26.304500, -48.848700),
    ("Blumenau", -26.919400, -49.066100),
    ("Cascavel", -24.955500, -53.455200),
    ("Ponta Grossa", -25.094500, -50.163300),
    ("Belo Horizonte", -19.916700, -43.934500),
    ("Goiânia", -16.686900, -49.264800),
    ("Recife", -8.047600, -34.877000),
    ("Fortaleza", -3.731900, -38.526700),
    ("Salvador", -12.971400, -38.501400),
    ("Natal", -5.794500, -35.211000),
    ("Manaus", -3.119000, -60.021700),
    ("Belém", -1.455800, -48.490200),
    ("Vitória", -20.315500, -40.312800),
    ("Uberlândia", -18.918600, -48.277200),
    ("Ribeirão Preto", -21.177500, -47.810300),
    ("Sorocaba", -23.501500, -47.452600),
    ("Chapecó", -27.100400, -52.615200),
    ("Pelotas", -31.765400, -52.337600),
)
FIRST_NAMES: Final = _words(
    "Ana Bruno Carla Daniel Eduarda Felipe Gabriela Henrique Isabela João Karina Lucas Mariana "
    "Nicolas Olívia Paulo Quésia Rafael Sofia Tiago Úrsula Vitor Wesley Yasmin Zeca Joana Marcos "
    "Patrícia Renato Luíza Emily Michael Sarah David Laura James Helena Otávio Bianca Caio"
)
LAST_NAMES: Final = _words(
    "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Martins "
    "Carvalho Araújo Melo Barbosa Cardoso Rocha Dias Nascimento Andrade Moreira Nunes Marques Machado "
    "Mendes Freitas Conceição Prado Smith Johnson Brown Miller Wilson Taylor Müller Schmidt Romão "
    "Gonçalves"
)
MIDDLE_NAMES: Final = _words("Maria|de Souza|dos Santos|Aparecida|Henrique|da Silva|Cristina|Luiz", sep="|")
STREETS: Final = _words(
    "Rua das Acácias|Rua XV de Novembro|Avenida Brasil|Rua Sete de Setembro|Rua das Flores|"
    "Avenida Paraná|Rua Marechal Deodoro|Rua João Negrão|Rua Itupava|Avenida Sete de Setembro|"
    "Rua Padre Anchieta|Rua Comendador Araújo|Alameda Dom Pedro II|Rua Chile|Rua Bom Jesus|"
    "Rua Brigadeiro Franco|North State Street|West Madison Street|Rua Mateus Leme|"
    "Rua Amintas de Barros",
    sep="|",
)
NEIGHBOURHOODS: Final = _words("Centro|Batel|Água Verde|Portão|Cabral|Bigorrilho|Loop|Rebouças", sep="|")
BUILDING_NAMES: Final = _words(
    "Residencial Aurora|Edifício Solar|Condomínio Jardim Botânico|Residencial Araucária|"
    "Edifício Atlântico|Residencial Ipê|Condomínio Parque das Águas|Edifício Monte Carlo",
    sep="|",
)
OBSERVATIONS: Final = (
    "",
    "",
    "",
    "",
    *_words("Poste de concreto|Caixa na esquina|Acesso pela garagem|Revisar", "|"),
)
VENDORS: Final = (  # OZmap name part, IXC fabricante_modelo, ONU serial prefix
    ("Fiberhome", "FH", "FHTT"),
    ("Huawei", "HW", "HWTC"),
    ("ZTE", "ZTE", "ZTEG"),
    ("VSOL", "VSOL", "GPON"),
    ("Intelbras", "INTELBRASG16", "ITBS"),
)
PLANS: Final = ("300 MEGA FIBRA", "500 MEGA FIBRA", "600 MEGA FIBRA", "1 GIGA FIBRA", "RADIO 20 MEGA")

_ASCII = str.maketrans("áâãàéêíóôõúüçÁÂÃÉÍÓÔÚÜÇ", "aaaaeeiooouucAAAEIOOUUC")


def ascii_lower(text: str) -> str:
    """Lower-case ASCII form used in logins (``"Conceição"`` → ``"conceicao"``)."""
    return text.translate(_ASCII).lower().replace(" ", "")


FIRST_ASCII: Final = tuple(ascii_lower(n) for n in FIRST_NAMES)
LAST_ASCII: Final = tuple(ascii_lower(n) for n in LAST_NAMES)


def client_name(facts: ClientFacts) -> str:
    """The client's name as OZmap holds it."""
    return f"{FIRST_NAMES[facts.first]} {LAST_NAMES[facts.last]}"


def ixc_client_name(facts: ClientFacts) -> str:
    """The ``razao`` IXC holds: the OZmap name, or a fuller/different spelling when ``name_differs``."""
    if not facts.name_differs:
        return client_name(facts)
    middle = MIDDLE_NAMES[(facts.h >> 8) % len(MIDDLE_NAMES)]
    return f"{FIRST_NAMES[facts.first]} {middle} {LAST_NAMES[facts.last]}".upper()


def client_login(facts: ClientFacts, c: int) -> str:
    """The IXC login of OZmap client ``c`` = the OZmap client ``code``."""
    return f"{FIRST_ASCII[facts.first]}.{LAST_ASCII[facts.last]}.{c + 1}"


HEX2: Final = tuple(f"{i:02X}" for i in range(256))


def mac(h: int, prefix: str = "A4:3E:51") -> str:
    """A MAC address derived from ``h``."""
    return f"{prefix}:{HEX2[(h >> 8) & 255]}:{HEX2[(h >> 16) & 255]}:{HEX2[(h >> 24) & 255]}"
