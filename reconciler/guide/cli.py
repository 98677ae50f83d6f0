"""``reconciler ozmap …``: the guide operations from the command line (same validation and answers as the API).

Every subcommand takes ``--config FILE`` (the engine config; its first system of kind ``ozmap`` is used) and
prints the answer as JSON on stdout. Exit codes: 0 done, 1 error (bad input, not found, OZmap refused or failed;
the reason on stderr), 2 ``power-check`` found clients whose read power is worse than calculated by more than
the threshold (like ``plan``'s "changes", so a provisioning script can gate on it).

Examples::

    reconciler ozmap feasibility --config cfg.toml --lat -27.59 --lng -48.55 --radius 300
    reconciler ozmap reserve --config cfg.toml --code joana4711 --name "Joana Prado" --lat -27.59 --lng -48.55
    reconciler ozmap power-check --config cfg.toml --threshold 2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from reconciler import config as config_mod
from reconciler.connectors.http import make_session
from reconciler.connectors.ozmap.guide_calls import GuideCalls
from reconciler.errors import ReconcilerError
from reconciler.guide import models
from reconciler.guide.http import Services, ozmap_system
from reconciler.guide.validation import convert

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_ERROR, EXIT_WORSE = 0, 1, 2

Runner = Callable[[Services, argparse.Namespace], Awaitable[Any]]


def _fields(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """Request fields from the arguments given (``request field = argument name``)."""
    return {field: getattr(args, arg) for field, arg in names.items() if getattr(args, arg, None) is not None}


def _point(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--lat", type=float, required=required, help="latitude, degrees (-90..90)")
    p.add_argument("--lng", type=float, required=required, help="longitude, degrees (-180..180)")


def _placement(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address")
    p.add_argument("--box", help="box or building id (default: the nearest feasible one)")
    p.add_argument("--splitter", help="splitter id")
    p.add_argument(
        "--port", type=int, help="port: of --splitter, or as the box counts it (default: first free)"
    )
    p.add_argument(
        "--radius", type=float, help=f"search radius, m ({models.MIN_RADIUS:g}..{models.MAX_RADIUS:g})"
    )


def _req(cls: type[Any], raw: dict[str, Any]) -> Any:
    return convert(raw, cls)


async def _status(s: Services, a: argparse.Namespace) -> Any:
    if len(a.code) == 1:
        return await s.monitoring.set_status(a.code[0], _req(models.StatusRequest, {"status": a.status}))
    return await s.monitoring.bulk_status(
        _req(models.BulkStatusRequest, {"codes": a.code, "status": a.status})
    )


async def _power_check(s: Services, a: argparse.Namespace) -> Any:
    threshold = _req(models.PowerCheckQuery, {"threshold": a.threshold}).threshold
    if a.code:
        return await s.monitoring.power_check(a.code, threshold)
    return await s.monitoring.power_report(threshold)


def _commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Runner]]:
    """name → (help, arguments, runner)."""

    def code(p: argparse.ArgumentParser) -> None:
        p.add_argument("--code", required=True, help="the client's code in OZmap")

    def feasibility(p: argparse.ArgumentParser) -> None:
        _point(p, required=True)
        p.add_argument("--radius", type=float, help="metres (default: OZmap's instance setting)")

    def splitters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--box", required=True, help="box or building id")
        p.add_argument("--all", action="store_true", help="also splitters without a free port")

    def reserve(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--name", default="")
        p.add_argument("--observation")
        _point(p, required=True)
        _placement(p)

    def remove(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--mode", choices=("property", "client"), default="property",
                       help="property: premises, client and drop (port freed); client: only the client")  # fmt: skip

    def update_client(p: argparse.ArgumentParser) -> None:
        code(p)
        for name in ("--name", "--observation", "--address", "--property-observation"):
            p.add_argument(name)
        _point(p, required=False)

    def update_box(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--box", required=True)
        p.add_argument("--splitter")
        p.add_argument("--port", type=int)

    def move(p: argparse.ArgumentParser) -> None:
        code(p)
        _point(p, required=True)
        _placement(p)

    def move_complete(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--new-property", required=True, help="the property id step 1 answered")

    def status(p: argparse.ArgumentParser) -> None:
        p.add_argument("--code", required=True, action="append", help="repeat for several clients")
        p.add_argument("--status", required=True, choices=("OK", "ERROR"))

    def power(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--dbm", type=float, required=True)

    def onu(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--serial")
        p.add_argument("--mac")
        p.add_argument("--pppoe")

    def pons(p: argparse.ArgumentParser) -> None:
        p.add_argument("--olt", required=True, help="OLT id, name or IP")

    def pon_power(p: argparse.ArgumentParser) -> None:
        pons(p)
        p.add_argument("--slot", type=int, required=True)
        p.add_argument("--pon", type=int, required=True)
        p.add_argument("--dbm", type=float, required=True)

    def power_check(p: argparse.ArgumentParser) -> None:
        p.add_argument("--code", help="one client (default: every client with a read power)")
        p.add_argument("--threshold", type=float, default=models.DEFAULT_THRESHOLD_DB, help="dB (default 2)")

    def pendency(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", required=True)
        p.add_argument("--description")
        _point(p, required=False)
        p.add_argument("--project")
        p.add_argument("--box")
        p.add_argument("--client-code")
        p.add_argument("--type", help="pendency type id or name (default: the first one)")
        p.add_argument("--owner", help="user id (default: the API key's user)")

    def prospect(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", required=True)
        _point(p, required=True)
        for name in ("--phone", "--code", "--address", "--observation"):
            p.add_argument(name)
        p.add_argument(
            "--viable", action=argparse.BooleanOptionalAction, help="default: checked by feasibility"
        )
        p.add_argument("--radius", type=float)

    def tags(p: argparse.ArgumentParser) -> None:
        code(p)
        p.add_argument("--tag", help="a tag name to look for (e.g. the mass-outage tag)")

    placement = {"lat": "lat", "lng": "lng", "address": "address", "box_id": "box", "splitter_id": "splitter",
                 "port": "port", "radius": "radius"}  # fmt: skip
    return {
        "feasibility": ("boxes and buildings with free ports near a point", feasibility,
                        lambda s, a: s.guide.feasibility(_req(models.FeasibilityQuery, _fields(a, lat="lat", lng="lng", radius="radius")))),
        "splitters": ("splitters of a box and their free ports", splitters,
                      lambda s, a: s.guide.box_splitters(a.box, free_only=not a.all)),
        "reserve": ("port reservation for a client not yet installed", reserve,
                    lambda s, a: s.guide.reserve(_req(models.ReservationRequest, _fields(a, code="code", name="name", observation="observation", **placement)))),
        "implant": ("implantation: the reservation becomes an active client", code,
                    lambda s, a: s.guide.implant(a.code)),
        "remove": ("remove a reservation or a client", remove, lambda s, a: s.guide.remove(a.code, a.mode)),
        "lookup": ("box, splitter and port of a client", code, lambda s, a: s.guide.connection(a.code)),
        "client": ("client state: implantation, status, ONU data", code, lambda s, a: s.guide.state(a.code)),
        "update-client": ("update client and premises data", update_client,
                          lambda s, a: s.guide.update_client(a.code, _req(models.ClientUpdateRequest, _fields(a, name="name", observation="observation", address="address", lat="lat", lng="lng", property_observation="property_observation")))),
        "update-box": ("move the client to another box (splitter, port)", update_box,
                       lambda s, a: s.guide.update_box(a.code, _req(models.BoxUpdateRequest, _fields(a, box_id="box", splitter_id="splitter", port="port")))),
        "move": ("address change, step 1: reserve a port at the new address", move,
                 lambda s, a: s.guide.change_address(a.code, _req(models.AddressChangeRequest, _fields(a, **placement)))),
        "move-complete": ("address change, step 2: remove the old premises, implant at the new", move_complete,
                          lambda s, a: s.guide.complete_address_change(a.code, _req(models.AddressChangeCompletion, {"new_property_id": a.new_property}))),
        "status": ("client status OK/ERROR", status, _status),
        "power": ("client read optical power (dBm)", power,
                  lambda s, a: s.monitoring.set_power(a.code, _req(models.PowerRequest, {"dbm": a.dbm}))),
        "onu": ("ONU data: serial, MAC, PPPoE user", onu,
                lambda s, a: s.monitoring.set_onu(a.code, _req(models.OnuRequest, _fields(a, serial_number="serial", mac_address="mac", pppoe_user="pppoe")))),
        "pons": ("PON ports of an OLT and their power", pons, lambda s, a: s.monitoring.pons(a.olt)),
        "pon-power": ("output power of an OLT PON port (dBm)", pon_power,
                      lambda s, a: s.monitoring.set_pon_power(a.olt, a.slot, a.pon, _req(models.PowerRequest, {"dbm": a.dbm}))),
        "power-check": ("read vs calculated power (exit 2 when some are worse)", power_check, _power_check),
        "pendency": ("create a pendency", pendency,
                     lambda s, a: s.notes.create_pendency(_req(models.PendencyRequest, _fields(a, name="name", description="description", lat="lat", lng="lng", project_id="project", box_id="box", client_code="client_code", pendency_type="type", owner_id="owner")))),
        "prospect": ("create a prospect", prospect,
                     lambda s, a: s.notes.create_prospect(_req(models.ProspectRequest, _fields(a, name="name", lat="lat", lng="lng", phone="phone", code="code", address="address", observation="observation", viable="viable", radius="radius")))),
        "tags": ("tags of a client, its premises and box", tags, lambda s, a: s.notes.tags(a.code, a.tag)),
    }  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ozmap`` subcommands (called by ``reconciler.cli``)."""
    sub = parser.add_subparsers(dest="ozmap_command", required=True, metavar="OPERATION")
    for name, (text, arguments, _) in _commands().items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", required=True, help="engine config file (TOML) naming an OZmap system")
        arguments(p)


async def run(args: argparse.Namespace) -> int:
    """Run ``reconciler ozmap <operation>``; prints the answer as JSON."""
    cfg = config_mod.load(args.config)
    system = ozmap_system(cfg)
    if system is None:
        raise ReconcilerError(f"{cfg.path}: no system of kind 'ozmap' is configured")
    _, _, runner = _commands()[args.ozmap_command]
    async with make_session(system.http, limit=system.http.concurrency) as session:
        answer = await runner(Services.over(GuideCalls.for_system(system, session)), args)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(answer)).decode() + "\n")
    if isinstance(answer, models.PowerReport) and answer.worse:
        return EXIT_WORSE
    if isinstance(answer, models.PowerCheck) and answer.verdict == "worse":
        return EXIT_WORSE
    return EXIT_OK
