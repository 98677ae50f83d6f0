"""The sandbox world generator: deterministic, coherent across both systems, and counted right by summary()."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from reconciler.sandbox.generate import World

ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
IXC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
OBJECT_ID = re.compile(r"[0-9a-f]{24}")

Rows = dict[str, list[dict[str, Any]]]


@cache
def snapshot(seed: int, scale: int) -> tuple[World, Rows, Rows]:
    """Every OZmap collection and IXC table of a world, materialised (cached per test session)."""
    world = World(seed=seed, scale=scale)
    oz = {name: list(world.ozmap_rows(name)) for name in world.ozmap_collections()}
    ixc = {name: list(world.ixc_rows(name)) for name in world.ixc_tables()}
    return world, oz, ixc


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    index = {row["id"]: row for row in rows}
    assert len(index) == len(rows), "ids must be unique"
    return index


@pytest.fixture(params=[100, 2000], ids=["scale100", "scale2000"])
def world_rows(request: pytest.FixtureRequest) -> tuple[World, Rows, Rows]:
    return snapshot(42, request.param)


# ------------------------------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_rows() -> None:
    first, second = World(seed=7, scale=600), World(seed=7, scale=600)
    for name in first.ozmap_collections():
        assert list(first.ozmap_rows(name)) == list(second.ozmap_rows(name)), name
    for name in first.ixc_tables():
        assert list(first.ixc_rows(name)) == list(second.ixc_rows(name)), name
    assert first.summary() == second.summary()


def test_different_seed_gives_different_rows() -> None:
    first, second = World(seed=7, scale=600), World(seed=8, scale=600)
    for name in ("boxes", "splitters", "properties", "ftth-clients"):
        assert list(first.ozmap_rows(name)) != list(second.ozmap_rows(name)), name
    for name in ("radusuarios", "cliente", "rad_caixa_ftth"):
        assert list(first.ixc_rows(name)) != list(second.ixc_rows(name)), name
    a = {row["id"] for row in first.ozmap_rows("boxes")}
    b = {row["id"] for row in second.ozmap_rows("boxes")}
    assert not a & b, "OZmap ids embed the seed"


def test_rows_come_in_id_order_and_unknown_names_fail() -> None:
    world, oz, ixc = snapshot(42, 2000)
    for name, rows in oz.items():
        ids = [row["id"] for row in rows]
        assert ids == sorted(ids), name
    for name, rows in ixc.items():
        ids = [int(row["id"]) for row in rows]
        assert ids == sorted(ids), name
    with pytest.raises(KeyError):
        world.ozmap_rows("nope")
    with pytest.raises(KeyError):
        world.ixc_rows("nope")
    with pytest.raises(ValueError):
        World(seed=1, scale=0)


# ------------------------------------------------------------------------------------------------ shapes
def test_ozmap_shapes(world_rows: tuple[World, Rows, Rows]) -> None:
    _world, oz, _ixc = world_rows
    for name, rows in oz.items():
        for row in rows:
            assert OBJECT_ID.fullmatch(row["id"]) and row["_id"] == row["id"], name
            assert ISO_MS.fullmatch(row["createdAt"]) and ISO_MS.fullmatch(row["updatedAt"]), name
            assert row["createdAt"] <= row["updatedAt"], name
    for row in oz["boxes"] + oz["buildings"] + oz["properties"]:
        if row["coords"] is not None:
            assert row["coords"] == [row["lng"], row["lat"]]
            assert -90 <= row["lat"] <= 90 and -180 <= row["lng"] <= 180
    assert {row["kind"] for row in oz["ftth-clients"]} == {"ftth"}
    assert {row["kind"] for row in oz["cables"]} == {"Drop"}
    for olt in oz["olts"]:
        assert re.fullmatch(r"OLT-\w+-\d+", olt["name"]) and olt["ip"].startswith("10.")


def test_ixc_values_are_strings(world_rows: tuple[World, Rows, Rows]) -> None:
    _world, _oz, ixc = world_rows
    for name, rows in ixc.items():
        for row in rows:
            assert all(type(v) is str for v in row.values()), (name, row)
            stamp = row["ultima_atualizacao"]
            assert IXC_DATETIME.fullmatch(stamp), (name, stamp)


# ------------------------------------------------------------------------------------------------ coherence
def test_network_is_connected(world_rows: tuple[World, Rows, Rows]) -> None:
    world, oz, _ixc = world_rows
    containers = by_id(oz["boxes"]) | by_id(oz["buildings"])
    projects = by_id(oz["projects"])
    splitters = by_id(oz["splitters"])
    for row in oz["boxes"] + oz["buildings"] + oz["splitters"] + oz["olts"]:
        assert row["project"] in projects
    for splitter in splitters.values():
        assert splitter["parent"] in containers
        outputs = splitter["connectables"]["output"]
        assert len(outputs) == len(splitter["ports"]) == splitter["ratio"]["output"]
        for fibre, port in zip(outputs, splitter["ports"], strict=True):
            assert not (fibre is not None and port["blocked"]), "a blocked port holds no client"
    # Every traceable service splitter leads to a PON, its slot and its OLT, both directions agreeing.
    pons, slots, olts = by_id(oz["pons"]), by_id(oz["slots"]), by_id(oz["olts"])
    pon_of_fibre = {f: pon for pon in pons.values() for f in pon["connectables"]}
    feeder_of_fibre = {
        f: s
        for s in splitters.values()
        if not s["isDrop"]
        for f in s["connectables"]["output"]
        if f is not None
    }
    untraceable = 0
    for splitter in splitters.values():
        if not splitter["isDrop"]:
            continue
        fibre = splitter["connectables"]["input"][0]
        if fibre is None:
            untraceable += 1
            continue
        network = feeder_of_fibre[fibre]
        assert network["parent"] in containers and containers[network["parent"]]["name"].startswith("CE-")
        pon = pon_of_fibre[network["connectables"]["input"][0]]
        slot = slots[pon["parent"]]
        olt = olts[slot["parent"]]
        assert pon["id"] in slot["connectables"] and slot["id"] in olt["connectables"]
    assert untraceable == world.summary()["boxes_untraceable"]


def test_ports_match_properties(world_rows: tuple[World, Rows, Rows]) -> None:
    _world, oz, _ixc = world_rows
    splitters = by_id(oz["splitters"])
    clients = by_id(oz["ftth-clients"])
    drops = by_id(oz["cables"])
    containers = by_id(oz["boxes"]) | by_id(oz["buildings"])
    taken: set[tuple[str, int]] = set()
    for prop in oz["properties"]:
        (connection,) = prop["connections"]
        splitter = splitters[connection["id"]]
        assert splitter["isDrop"] and splitter["parent"] == prop["box"]
        assert splitter["connectables"]["output"][connection["port"] - 1] == connection["fiber"]
        taken.add((splitter["id"], connection["port"]))
        client = clients[prop["client"]]
        assert prop["history"]["clients"][0]["code"] == client["code"]
        assert connection["implanted"] == client["implanted"]
        drop = drops[prop["drop"]]
        assert (drop["boxA"], drop["boxB"]) == (prop["box"], prop["id"])
        assert drop["id"] in containers[prop["box"]]["cables"]
        if containers[prop["box"]]["kind"] == "Building":
            assert prop["parent"] == prop["box"]
    occupied = {
        (s["id"], i + 1)
        for s in splitters.values()
        if s["isDrop"]
        for i, f in enumerate(s["connectables"]["output"])
        if f
    }
    assert occupied == taken
    assert len(clients) == len(oz["properties"]) == len(drops)
    assert len({c["code"] for c in clients.values()}) == len(clients), "client codes are unique"


def test_ixc_references_resolve(world_rows: tuple[World, Rows, Rows]) -> None:
    _world, _oz, ixc = world_rows
    ids = {name: {row["id"] for row in rows} for name, rows in ixc.items()}

    def ok(value: str, table: str) -> bool:
        return value == "0" or value in ids[table]

    for box in ixc["rad_caixa_ftth"]:
        assert box["id_projeto"] in ids["df_projeto"] and ok(box["id_transmissor"], "radpop_radio")
    for port in ixc["radpop_radio_porta_fibra"]:
        assert port["id_pop_radio"] in ids["radpop_radio"]
    for radio in ixc["radpop_radio"]:
        assert ok(radio["id_pop"], "radpop") and radio["login"] and radio["senha"]
    for login in ixc["radusuarios"]:
        assert login["id_cliente"] in ids["cliente"] and ok(login["id_contrato"], "cliente_contrato")
        assert ok(login["id_caixa_ftth"], "rad_caixa_ftth") and ok(login["id_transmissor"], "radpop_radio")
        assert ok(login["id_df_projeto"], "df_projeto") and ok(login["id_condominio"], "cliente_condominio")
        assert ok(login["id_porta_transmissor"], "radpop_radio_porta_fibra")
        if login["id_caixa_ftth"] == "0":
            assert login["ftth_porta"] == "0"
    for contract in ixc["cliente_contrato"]:
        assert contract["id_cliente"] in ids["cliente"]
    for onu in ixc["radpop_radio_cliente_fibra"]:
        assert onu["id_login"] in ids["radusuarios"] and ok(onu["id_caixa_ftth"], "rad_caixa_ftth")


def test_logins_match_ozmap_clients(world_rows: tuple[World, Rows, Rows]) -> None:
    world, oz, ixc = world_rows
    summary = world.summary()
    codes = {c["code"]: c for c in oz["ftth-clients"]}
    logins = ixc["radusuarios"]
    unmatched = [login for login in logins if login["login"] not in codes]
    assert len(unmatched) == summary["ixc_only_logins"]
    assert len(codes) - (len(logins) - len(unmatched)) == summary["clients_without_ixc_login"]
    names = {row["id"]: row["razao"] for row in ixc["cliente"]}
    differ = sum(
        1 for lg in logins if lg["login"] in codes and names[lg["id_cliente"]] != codes[lg["login"]]["name"]
    )
    assert differ == summary["logins_name_differs"]
    props = {p["client"]: p for p in oz["properties"]}
    moved = 0
    for login in logins:
        client = codes.get(login["login"])
        if client is None or login["tipo_conexao_mapa"] != "F":
            continue
        prop = props[client["id"]]
        moved += (login["latitude"], login["longitude"]) != (repr(prop["lat"]), repr(prop["lng"]))
    assert moved == summary["logins_coords_differ"]


def test_projects_and_olts_across_systems(world_rows: tuple[World, Rows, Rows]) -> None:
    world, oz, ixc = world_rows
    summary = world.summary()
    oz_names = {p["name"] for p in oz["projects"]}
    ixc_names = {p["nome"] for p in ixc["df_projeto"]}
    assert len(oz_names - ixc_names) == summary["projects_missing_in_ixc"] == 1
    assert ixc_names - oz_names == {"Rede Legada"}
    oz_ips = {o["ip"] for o in oz["olts"]}
    ixc_ips = {r["ip"] for r in ixc["radpop_radio"] if r["conexao"] == "F"}
    assert ixc_ips <= oz_ips
    assert len(oz_ips - ixc_ips) == summary["olts_missing_in_ixc"]


# ------------------------------------------------------------------------------------------------ plan figures
def _service_boxes(oz: Rows) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    by_parent: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for splitter in oz["splitters"]:
        if splitter["isDrop"]:
            by_parent[splitter["parent"]].append(splitter)
    for box in oz["boxes"]:
        yield box, sorted(by_parent.get(box["id"], []), key=lambda s: (s["name"], s["id"]))


def test_summary_matches_an_independent_box_plan(world_rows: tuple[World, Rows, Rows]) -> None:
    """Recompute the seed-002 box figures from the rows alone, the way an engine would."""
    world, oz, ixc = world_rows
    summary = world.summary()
    project_name = {p["id"]: p["name"] for p in oz["projects"]}
    ixc_project = {p["nome"]: p["id"] for p in ixc["df_projeto"]}
    ixc_olt_ips = {r["ip"] for r in ixc["radpop_radio"]}
    olt_ip = _olt_ip_of_fibre(oz)
    ixc_boxes = {(b["descricao"], b["id_projeto"]) for b in ixc["rad_caixa_ftth"]}
    ixc_boxes_folded = {(name.lower(), project) for name, project in ixc_boxes}
    figures: collections.Counter[str] = collections.Counter()
    for box, services in _service_boxes(oz):
        if not services:
            figures["without_service_splitter"] += 1
            continue
        if not box["implanted"]:
            figures["in_project"] += 1
            continue
        figures["eligible"] += 1
        ip = olt_ip.get(services[0]["connectables"]["input"][0])
        project = ixc_project.get(project_name[box["project"]])
        if box["lat"] is None:
            figures["no_coords"] += 1
        elif project is None:
            figures["project_missing"] += 1
        elif ip is None:
            figures["untraceable"] += 1
        elif ip not in ixc_olt_ips:
            figures["olt_missing"] += 1
        elif (box["name"], project) in ixc_boxes:
            figures["preexisting"] += 1
        else:
            figures["create"] += 1
            figures["case_trap"] += (box["name"].lower(), project) in ixc_boxes_folded
    assert figures["without_service_splitter"] == summary["boxes_without_service_splitter"]
    assert figures["in_project"] == summary["boxes_in_project"]
    assert figures["eligible"] == summary["service_boxes_eligible"]
    assert figures["no_coords"] == summary["boxes_without_coords"]
    assert figures["project_missing"] == summary["boxes_project_missing_in_ixc"]
    assert figures["untraceable"] == summary["boxes_untraceable"]
    assert figures["olt_missing"] == summary["boxes_olt_missing_in_ixc"]
    assert figures["preexisting"] == summary["boxes_preexisting_in_ixc"]
    assert figures["create"] == summary["boxes_to_create"]
    assert figures["case_trap"] == summary["boxes_case_different_name_in_ixc"]
    assert len(oz["boxes"]) == summary["boxes"]
    assert len(ixc["rad_caixa_ftth"]) == summary["ixc_boxes"]


def _olt_ip_of_fibre(oz: Rows) -> dict[str | None, str]:
    """Service splitter input fibre → IP of the OLT at the end of its chain."""
    slots, olts = by_id(oz["slots"]), by_id(oz["olts"])
    pon_ip = {
        f: olts[slots[pon["parent"]]["parent"]]["ip"] for pon in oz["pons"] for f in pon["connectables"]
    }
    out: dict[str | None, str] = {}
    for splitter in oz["splitters"]:
        if not splitter["isDrop"] and splitter["connectables"]["input"][0] in pon_ip:
            for fibre in splitter["connectables"]["output"]:
                if fibre is not None:
                    out[fibre] = pon_ip[splitter["connectables"]["input"][0]]
    return out


def test_summary_counts_add_up(world_rows: tuple[World, Rows, Rows]) -> None:
    world, oz, ixc = world_rows
    s = world.summary()
    assert s["boxes"] == s["boxes_network_only"] + s["boxes_cto"]
    assert s["boxes_cto"] == s["boxes_empty"] + s["boxes_in_project"] + s["service_boxes_eligible"]
    refused = (
        s["boxes_without_coords"]
        + s["boxes_untraceable"]
        + s["boxes_olt_missing_in_ixc"]
        + s["boxes_project_missing_in_ixc"]
    )
    assert s["service_boxes_eligible"] == s["service_boxes_ok"] + refused
    assert s["service_boxes_ok"] == s["boxes_preexisting_in_ixc"] + s["boxes_to_create"]
    assert s["boxes_preexisting_in_ixc"] == s["boxes_preexisting_exact"] + s["boxes_preexisting_drifted"]
    assert s["service_ports"] == s["occupied_ports"] + s["blocked_ports"] + s["free_ports"]
    assert s["clients"] == s["occupied_ports"] == len(oz["properties"])
    assert s["clients"] == s["clients_implanted"] + s["clients_reservations"]
    categories = [k for k in s if k.startswith(("clients_", "reservations_")) and k not in (
        "clients_implanted", "clients_reservations", "clients_in_buildings")]  # fmt: skip
    assert sum(s[k] for k in categories) == s["clients"]
    assert s["logins"] == len(ixc["radusuarios"]) == len(ixc["cliente"])
    assert s["contracts"] == len(ixc["cliente_contrato"])
    assert s["onus"] == len(ixc["radpop_radio_cliente_fibra"])
    assert s["buildings"] == len(oz["buildings"]) == len(ixc["cliente_condominio"])
    statuses = collections.Counter(c["status"] for c in ixc["cliente_contrato"])
    for status in "PAIND":
        assert statuses[status] == s[f"contracts_{status}"]
    zero = sum(1 for onu in ixc["radpop_radio_cliente_fibra"] if onu["sinal_rx"] == "0.00")
    assert zero == s["onus_without_reading"]
    online = collections.Counter(login["online"] or "empty" for login in ixc["radusuarios"])
    for value in ("S", "N", "SS", "empty"):
        assert online[value] == s[f"online_{value}"]


def test_every_case_is_exercised_at_scale_2000() -> None:
    world, _oz, ixc = snapshot(42, 2000)
    s = world.summary()
    must_exist = [k for k in s if k not in ("projects_missing_in_ixc",)]
    assert [k for k in must_exist if s[k] == 0] == []
    logins = ixc["radusuarios"]
    assert {login["tipo_conexao_mapa"] for login in logins} == {"F", "58"}
    assert {login["ativo"] for login in logins} == {"S", "N"}
    fiber = sum(1 for login in logins if login["tipo_conexao_mapa"] == "F") / len(logins)
    assert 0.9 < fiber < 0.99
    drift = [b for b in ixc["rad_caixa_ftth"] if b["status"] == "I" or b["id_transmissor"] == "0"]
    assert drift


def test_scale_sets_the_proportions() -> None:
    world = World(seed=3, scale=20_000)
    s = world.summary()
    assert 0.08 < s["boxes_cto"] / 20_000 < 0.12
    assert 0.8 < s["clients"] / 20_000 < 1.0
    assert 0.25 < s["boxes_preexisting_in_ixc"] / s["service_boxes_ok"] < 0.4
    assert s["projects"] == 2
    assert World(seed=3, scale=500_000).layout.n_projects == 10
