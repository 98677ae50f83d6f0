"""Monitoring, power and note operations of the Integrator's Guide end to end against the OZmap sandbox:
client status, optical power, ONU data, PON power, read vs calculated power, pendencies, prospects, tags."""

from __future__ import annotations

import pytest

from reconciler.guide import models
from reconciler.guide.validation import InvalidInput, Missing

from .conftest import Env
from .world import (
    CALCULATED_S1,
    CE1,
    CTO1,
    LAT,
    LNG,
    OLT,
    OUTAGE_TAG,
    PENDENCY_TYPE,
    PON1,
    PON2,
    PON3,
    PROJECT,
    S1,
)

pytestmark = pytest.mark.anyio


async def test_client_status_one_and_many(env: Env) -> None:
    monitoring = env.services.monitoring
    state = await monitoring.set_status("ana", models.StatusRequest(status="ERROR"))
    assert state.status == "ERROR" and env.client("ana")["status"] == 1
    bulk = await monitoring.bulk_status(models.BulkStatusRequest(codes=["ana", "bia", "ghost"], status="OK"))
    assert (bulk.updated, bulk.unknown) == (["ana", "bia"], ["ghost"])
    assert (env.client("ana")["status"], env.client("bia")["status"]) == (0, 0)


async def test_client_optical_power(env: Env) -> None:
    connection = await env.services.monitoring.set_power("caio", models.PowerRequest(dbm=-19.8))
    assert connection.potency_read == -19.8
    assert env.properties_of("caio")[0]["potencyRead"] == -19.8


async def test_onu_data_keeps_the_parts_not_given(env: Env) -> None:
    monitoring = env.services.monitoring
    state = await monitoring.set_onu(
        "ana", models.OnuRequest(serial_number="ZTEGC0FFEE01", mac_address="a4-3e-51-00-11-22")
    )
    assert (state.serial_number, state.mac_address, state.pppoe_user) == (
        "ZTEGC0FFEE01",
        "A4:3E:51:00:11:22",
        "ana.pppoe",
    )
    assert env.client("ana")["onu"] == {
        "serial_number": "ZTEGC0FFEE01",
        "mac_address": "A4:3E:51:00:11:22",
        "user_PPPoE": "ana.pppoe",
    }
    with pytest.raises(InvalidInput, match="not a MAC address"):
        await monitoring.set_onu("ana", models.OnuRequest(mac_address="zz:zz"))


async def test_pon_ports_of_an_olt_and_their_power(env: Env) -> None:
    monitoring = env.services.monitoring
    for ref in (OLT, "OLT-1", "10.0.0.1"):
        pons = await monitoring.pons(ref)
        assert [(p.id, p.slot, p.pon, p.potency) for p in pons] == [
            (PON1, 1, 1, 3.0),
            (PON2, 1, 2, 2.5),
            (PON3, 2, 1, 0),
        ]
    updated = await monitoring.set_pon_power("10.0.0.1", 1, 2, models.PowerRequest(dbm=4.25))
    assert (updated.id, updated.potency) == (PON2, 4.25)
    pon = env.store.get("pons", PON2)
    assert pon is not None and pon["potency"] == 4.25
    with pytest.raises(Missing, match="no PON 3/1"):
        await monitoring.set_pon_power("OLT-1", 3, 1, models.PowerRequest(dbm=1))
    with pytest.raises(Missing, match="no OLT"):
        await monitoring.pons("OLT-9")


async def test_read_vs_calculated_power_of_one_client(env: Env) -> None:
    monitoring = env.services.monitoring
    ok = await monitoring.power_check("ana")
    assert (ok.read_dbm, ok.calculated_dbm, ok.worse_by_db, ok.verdict) == (-22.0, CALCULATED_S1, 0.5, "ok")
    assert [(h.kind, h.id, h.port, h.db) for h in ok.path] == [
        ("pon", PON1, None, 3.0),
        (
            "splitter",
            env.store.all("splitters")[0]["id"],
            1,
            -10.5,
        ),  # CE-1's network splitter: its type's loss
        ("splitter", S1, 1, -14.0),  # S1's own attenuation
    ]
    worse = await monitoring.power_check("bia")
    assert (worse.verdict, worse.worse_by_db) == ("worse", 8.5)
    assert "8.5 dB below" in worse.reason
    unknown = await monitoring.power_check("caio")
    assert (unknown.verdict, unknown.calculated_dbm, unknown.reason) == (
        "unknown",
        CALCULATED_S1,
        "no read power in OZmap (potencyRead)",
    )
    assert (await monitoring.power_check("ana", threshold=0.25)).verdict == "worse"


async def test_power_report_lists_the_worse_clients(env: Env) -> None:
    report = await env.services.monitoring.power_report(2.0)
    assert (report.checked, report.unknown, [c.code for c in report.worse]) == (2, 0, ["bia"])
    stricter = await env.services.monitoring.power_report(0.1)
    assert [c.code for c in stricter.worse] == ["bia", "ana"]  # worst first
    # the PON's launch power feeds the calculation: raise it and bia is no longer "worse" at 2 dB... nor is ana
    await env.services.monitoring.set_pon_power("OLT-1", 1, 1, models.PowerRequest(dbm=-5.0))
    lowered = await env.services.monitoring.power_report(2.0)
    assert lowered.worse == []


async def test_pendency_from_a_box_with_the_keys_user(env: Env) -> None:
    created = await env.services.notes.create_pendency(
        models.PendencyRequest(name="Caixa aberta", description="tampa quebrada", box_id=CTO1)
    )
    assert (created.project_id, created.pendency_type_id, created.lat, created.lng) == (
        PROJECT,
        PENDENCY_TYPE,
        LAT,
        LNG,
    )
    row = env.store.get("pendencies", created.id)
    assert row is not None
    assert (row["name"], row["description"], row["coords"], row["solved"]) == (
        "Caixa aberta",
        "tampa quebrada",
        [LNG, LAT],
        False,
    )
    assert row["owner"] == env.store.user_for_key(next(iter(env.store.api_keys)))["id"]  # type: ignore[index]
    by_name = await env.services.notes.create_pendency(
        models.PendencyRequest(name="Sinal", client_code="bia", pendency_type="Rede", owner_id="u1")
    )
    assert by_name.project_id == PROJECT
    with pytest.raises(InvalidInput, match="unknown pendency_type 'Poste'"):
        await env.services.notes.create_pendency(
            models.PendencyRequest(name="x", box_id=CE1, pendency_type="Poste")
        )
    with pytest.raises(InvalidInput, match="needs project_id"):
        await env.services.notes.create_pendency(models.PendencyRequest(name="x", lat=LAT, lng=LNG))


async def test_prospect_records_feasibility(env: Env) -> None:
    notes = env.services.notes
    far = await notes.create_prospect(
        models.ProspectRequest(name="Rita", lat=-23.0, lng=-46.0, phone="+55 48 9999")
    )
    near = await notes.create_prospect(models.ProspectRequest(name="Rui", lat=LAT, lng=LNG))
    assert (far.viable, near.viable) == (False, True)
    row = env.store.get("prospects", far.id)
    assert row is not None and (row["name"], row["phone"], row["viable"], row["coords"]) == (
        "Rita",
        "+55 48 9999",
        False,
        [-46.0, -23.0],
    )


async def test_tag_query_for_a_mass_outage(env: Env) -> None:
    found = await env.services.notes.tags("ana", "queda-massiva")
    assert found.has_tag is True
    assert [(t.id, t.name, t.on) for t in found.tags] == [(OUTAGE_TAG, "queda-massiva", "box")]
    other = await env.services.notes.tags("ana", "outra")
    assert other.has_tag is False
    assert (await env.services.notes.tags("ana")).has_tag is None
