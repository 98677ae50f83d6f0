"""The guide API over HTTP (aiohttp), mounted by the daemon next to /healthz, /metrics and the webhooks.

:func:`mount` adds every route of :data:`ROUTES` plus ``GET /openapi.json`` to an application. The routes talk to
the configured OZmap system (the first system of kind ``ozmap`` by name) through their own HTTP session, opened
on the application's start-up and closed on its clean-up.

- **Input** is decoded into the request Structs by :mod:`.validation`: a bad value answers 400
  ``{"error": "lat must be a latitude between -90 and 90 degrees (got 91.0)", "field": "lat"}``.
- **Auth**: reads are open (like /metrics, for neighbours in the pod); writes need the daemon's shared secret,
  as a bearer token or an HMAC signature (:func:`reconciler.daemon.webhooks.verify`): 401 when wrong, 403 when
  no secret is configured.
- **Errors**: 404 something named is not in OZmap, 409 not possible now, 422 OZmap refused the write (its
  message included), 502 OZmap failed, 503 no OZmap system configured or the daemon is stopping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import msgspec
from aiohttp import web

from reconciler import config as config_mod
from reconciler import errors
from reconciler.connectors.http import make_session
from reconciler.connectors.ozmap.guide_calls import GuideCalls
from reconciler.daemon import webhooks
from reconciler.guide import models
from reconciler.guide.monitoring import Monitoring
from reconciler.guide.notes import Notes
from reconciler.guide.openapi import PathParam, RouteSpec, document
from reconciler.guide.operations import Guide
from reconciler.guide.validation import Conflict, InvalidInput, Missing, decode_body, from_query

__all__ = ["ROUTES", "GuideApi", "Services", "mount", "ozmap_system"]

log = logging.getLogger("reconciler.guide")

CODE = PathParam("code", "the client's code in OZmap")
BOX = PathParam("box_id", "an OZmap box or building id")
OLT = PathParam("olt", "an OZmap OLT id, name or IP address")
SLOT = PathParam("slot", "slot number (position in the OLT, 1-based)", integer=True)
PON = PathParam("pon", "PON number within the slot (starting_pon_number + position)", integer=True)


@dataclass(frozen=True)
class Services:
    guide: Guide
    monitoring: Monitoring
    notes: Notes

    @classmethod
    def over(cls, calls: GuideCalls) -> Services:
        guide = Guide(calls)
        return cls(guide, Monitoring(guide), Notes(guide))


@dataclass(frozen=True)
class Call:
    """One decoded request: path parameters, the query Struct, the body Struct."""

    path: Mapping[str, Any]
    query: Any
    body: Any


Handler = Callable[[Services, Call], Awaitable[Any]]


def _code(call: Call) -> str:
    return str(call.path["code"])


ROUTES: Final[tuple[tuple[RouteSpec, Handler], ...]] = (
    (
        RouteSpec("GET", "/ozmap/feasibility", "feasibility", "Feasibility by radius and by condominium",
                  models.Feasibility, query=models.FeasibilityQuery,
                  description="Boxes (CTOs) and buildings with free ports near a point, nearest first."),
        lambda s, c: s.guide.feasibility(c.query),
    ),
    (
        RouteSpec("GET", "/ozmap/boxes/{box_id}/splitters", "box_splitters", "Splitters of a box and their free ports",
                  list[models.SplitterPorts], query=models.SplittersQuery, path_params=(BOX,)),
        lambda s, c: s.guide.box_splitters(str(c.path["box_id"]), free_only=not c.query.all),
    ),
    (
        RouteSpec("POST", "/ozmap/reservations", "reserve", "Port reservation (client not implanted)",
                  models.Reservation, status=201, body=models.ReservationRequest, auth=True,
                  errors=(400, 404, 409, 422, 502, 503)),
        lambda s, c: s.guide.reserve(c.body),
    ),
    (
        RouteSpec("GET", "/ozmap/clients/{code}", "client", "Client state: implantation, status, ONU data",
                  models.ClientState, path_params=(CODE,)),
        lambda s, c: s.guide.state(_code(c)),
    ),
    (
        RouteSpec("PATCH", "/ozmap/clients/{code}", "update_client", "Update client and premises data",
                  models.ClientConnection, body=models.ClientUpdateRequest, path_params=(CODE,), auth=True,
                  errors=(400, 404, 409, 422, 502, 503)),
        lambda s, c: s.guide.update_client(_code(c), c.body),
    ),
    (
        RouteSpec("DELETE", "/ozmap/clients/{code}", "remove", "Remove a reservation or a client",
                  models.Removal, query=models.RemovalQuery, path_params=(CODE,), auth=True),
        lambda s, c: s.guide.remove(_code(c), c.query.mode),
    ),
    (
        RouteSpec("POST", "/ozmap/clients/{code}/implantation", "implant", "Implantation (client activation)",
                  models.ClientState, path_params=(CODE,), auth=True),
        lambda s, c: s.guide.implant(_code(c)),
    ),
    (
        RouteSpec("GET", "/ozmap/clients/{code}/connection", "connection", "Box, splitter and port of a client",
                  models.ClientConnection, path_params=(CODE,)),
        lambda s, c: s.guide.connection(_code(c)),
    ),
    (
        RouteSpec("PUT", "/ozmap/clients/{code}/box", "update_box", "Update the client's box (splitter, port)",
                  models.ClientConnection, body=models.BoxUpdateRequest, path_params=(CODE,), auth=True,
                  errors=(400, 404, 422, 502, 503)),
        lambda s, c: s.guide.update_box(_code(c), c.body),
    ),
    (
        RouteSpec("POST", "/ozmap/clients/{code}/address-change", "change_address",
                  "Address change, step 1: feasibility and a reserved port at the new address",
                  models.AddressChange, status=201, body=models.AddressChangeRequest, path_params=(CODE,),
                  auth=True, errors=(400, 404, 409, 422, 502, 503)),
        lambda s, c: s.guide.change_address(_code(c), c.body),
    ),
    (
        RouteSpec("POST", "/ozmap/clients/{code}/address-change/complete", "complete_address_change",
                  "Address change, step 2: remove the old premises, implant the client at the new ones",
                  models.AddressChange, body=models.AddressChangeCompletion, path_params=(CODE,), auth=True,
                  errors=(400, 404, 409, 422, 502, 503)),
        lambda s, c: s.guide.complete_address_change(_code(c), c.body),
    ),
    (
        RouteSpec("PUT", "/ozmap/clients/{code}/status", "set_status", "Client status OK/ERROR",
                  models.ClientState, body=models.StatusRequest, path_params=(CODE,), auth=True),
        lambda s, c: s.monitoring.set_status(_code(c), c.body),
    ),
    (
        RouteSpec("POST", "/ozmap/bulk/status", "bulk_status", "Status OK/ERROR of many clients at once",
                  models.BulkStatus, body=models.BulkStatusRequest, auth=True, errors=(400, 502, 503)),
        lambda s, c: s.monitoring.bulk_status(c.body),
    ),
    (
        RouteSpec("PUT", "/ozmap/clients/{code}/power", "set_power", "Client optical power (read, dBm)",
                  models.ClientConnection, body=models.PowerRequest, path_params=(CODE,), auth=True),
        lambda s, c: s.monitoring.set_power(_code(c), c.body),
    ),
    (
        RouteSpec("PUT", "/ozmap/clients/{code}/onu", "set_onu", "ONU data: MAC, PPPoE user, serial",
                  models.ClientState, body=models.OnuRequest, path_params=(CODE,), auth=True,
                  errors=(400, 404, 409, 422, 502, 503)),
        lambda s, c: s.monitoring.set_onu(_code(c), c.body),
    ),
    (
        RouteSpec("GET", "/ozmap/clients/{code}/power-check", "power_check",
                  "Read vs calculated power of a client (provisioning gate)", models.PowerCheck,
                  query=models.PowerCheckQuery, path_params=(CODE,)),
        lambda s, c: s.monitoring.power_check(_code(c), c.query.threshold),
    ),
    (
        RouteSpec("GET", "/ozmap/clients/{code}/tags", "tags", "Tags of a client, its premises and its box",
                  models.TagQuery, query=models.TagsQuery, path_params=(CODE,)),
        lambda s, c: s.notes.tags(_code(c), c.query.tag),
    ),
    (
        RouteSpec("GET", "/ozmap/power-check", "power_report",
                  "Clients whose read power is worse than the calculated power by more than the threshold",
                  models.PowerReport, query=models.PowerCheckQuery, errors=(400, 502, 503)),
        lambda s, c: s.monitoring.power_report(c.query.threshold),
    ),
    (
        RouteSpec("GET", "/ozmap/olts/{olt}/pons", "pons", "PON ports of an OLT and their launch power",
                  list[models.PonInfo], path_params=(OLT,)),
        lambda s, c: s.monitoring.pons(str(c.path["olt"])),
    ),
    (
        RouteSpec("PUT", "/ozmap/olts/{olt}/pons/{slot}/{pon}/power", "set_pon_power",
                  "Output power of an OLT's PON port (dBm)", models.PonInfo, body=models.PowerRequest,
                  path_params=(OLT, SLOT, PON), auth=True, errors=(400, 404, 422, 502, 503)),
        lambda s, c: s.monitoring.set_pon_power(str(c.path["olt"]), c.path["slot"], c.path["pon"], c.body),
    ),
    (
        RouteSpec("POST", "/ozmap/pendencies", "create_pendency", "Create a pendency", models.PendencyCreated,
                  status=201, body=models.PendencyRequest, auth=True, errors=(400, 404, 409, 422, 502, 503)),
        lambda s, c: s.notes.create_pendency(c.body),
    ),
    (
        RouteSpec("POST", "/ozmap/prospects", "create_prospect", "Create a prospect (no feasibility yet)",
                  models.ProspectCreated, status=201, body=models.ProspectRequest, auth=True,
                  errors=(400, 422, 502, 503)),
        lambda s, c: s.notes.create_prospect(c.body),
    ),
)  # fmt: skip


def ozmap_system(cfg: config_mod.Config) -> config_mod.SystemConfig | None:
    """The OZmap system the guide talks to: the first of kind ``ozmap`` by name (None when there is none)."""
    return next((s for _, s in sorted(cfg.systems.items()) if s.kind == "ozmap"), None)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(payload), status=status, content_type="application/json")


def _problem(status: int, message: str, field: str | None = None) -> web.Response:
    return _json(models.Problem(message, field), status)


class GuideApi:
    """The routes' state: the OZmap services (while the app runs), the secrets, the stopping flag."""

    def __init__(
        self,
        system: config_mod.SystemConfig | None,
        *,
        secrets: Callable[[], Sequence[str]],
        stopping: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.system = system
        self.secrets = secrets
        self.stopping = stopping
        self.clock = clock
        self.services: Services | None = None
        self._session: aiohttp.ClientSession | None = None
        self._document = msgspec.json.encode(document([spec for spec, _ in ROUTES]))

    async def start(self, app: web.Application) -> None:
        if self.system is not None:
            self._session = make_session(self.system.http, limit=self.system.http.concurrency)
            self.services = Services.over(GuideCalls.for_system(self.system, self._session))

    async def stop(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
        self._session, self.services = None, None

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._document, content_type="application/json")

    def handler(self, spec: RouteSpec, run: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            if spec.auth:
                problem = webhooks.verify(request.headers, body, list(self.secrets()), now=self.clock())
                if problem is not None:
                    return _problem(403 if not self.secrets() else 401, problem)
                if self.stopping():
                    return _problem(503, "shutting down")
            if self.services is None:
                return _problem(503, 'no OZmap system is configured (a [systems.*] with kind = "ozmap")')
            try:
                call = Call(
                    path=_path_params(spec, request.match_info),
                    query=from_query(request.query, spec.query) if spec.query is not None else None,
                    body=decode_body(body, spec.body) if spec.body is not None else None,
                )
                result = await run(self.services, call)
            except InvalidInput as exc:
                return _problem(400, str(exc), exc.field)
            except (Missing, errors.NotFound) as exc:
                return _problem(404, str(exc))
            except Conflict as exc:
                return _problem(409, str(exc))
            except errors.AuthError as exc:
                return _problem(502, f"OZmap refused the API key: {exc}")
            except errors.TerminalRemoteError as exc:
                return _problem(422, f"OZmap refused the request: {exc}")
            except errors.RemoteError as exc:
                return _problem(502, f"OZmap failed: {exc}")
            if spec.auth:
                log.info("guide %s %s", spec.operation_id, request.path, extra={"event": "guide_write"})
            return _json(result, spec.status)

        return handle


def _path_params(spec: RouteSpec, match: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in spec.path_params:
        text = match[param.name]
        if param.integer:
            if not text.isdigit() or int(text) < 1:
                raise InvalidInput(f"{param.name} must be a whole number from 1 (got {text!r})", param.name)
            values[param.name] = int(text)
        else:
            values[param.name] = text
    return values


def mount(
    app: web.Application,
    cfg: config_mod.Config,
    *,
    stopping: Callable[[], bool] = lambda: False,
) -> GuideApi:
    """Add the guide routes and ``/openapi.json`` to ``app``; writes accept ``[daemon] webhook-secret`` and the
    OZmap system's own ``webhook-secret``."""
    system = ozmap_system(cfg)
    secrets = [s.reveal() for s in (cfg.webhook_secret, system.webhook_secret if system else None) if s]
    api = GuideApi(system, secrets=lambda: secrets, stopping=stopping)
    for spec, run in ROUTES:
        app.router.add_route(spec.method, spec.path, api.handler(spec, run))
    app.router.add_get("/openapi.json", api.openapi)
    app.on_startup.append(api.start)
    app.on_cleanup.append(api.stop)
    return api
