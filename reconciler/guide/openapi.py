"""The OpenAPI 3.1 document of the guide API, generated from the route table and the msgspec Structs.

Each :class:`RouteSpec` says what a route takes (path parameters, a query Struct, a body Struct) and answers
(a type, a status); :func:`document` turns them into ``paths`` and lets ``msgspec.json.schema_components``
write every schema into ``components.schemas`` (JSON Schema 2020-12, the dialect of OpenAPI 3.1), so the
document cannot drift from the code that decodes requests and encodes answers. Served at ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from reconciler import __version__
from reconciler.guide.models import Problem

__all__ = ["PathParam", "RouteSpec", "document"]

REF = "#/components/schemas/{name}"

_ERRORS = {
    400: "Invalid input: the message names the field and its allowed range",
    401: "Authentication failed (bad bearer token or signature)",
    403: "Writes are disabled: no webhook-secret is configured",
    404: "A client, box, OLT or PON the request names does not exist in OZmap",
    409: "Not possible in the current state (code already used, no feasible box…)",
    422: "OZmap refused the request (e.g. the port is occupied or blocked)",
    502: "OZmap failed or answered something unexpected",
    503: "No OZmap system is configured, or the daemon is shutting down",
}

DESCRIPTION = """\
The OZmap Integrator's Guide operations (feasibility, port reservation, implantation, removal, address change,
client data, status, optical power, ONU data, PON power, read vs calculated power, pendencies, prospects, tags)
for the ERP, CRM or chatbot running beside the reconciler daemon. Clients are named by their OZmap code.

Writes need the daemon's shared secret (`[daemon] webhook-secret`, or the OZmap system's `webhook-secret`):
`Authorization: Bearer <secret>`, or `X-Reconciler-Timestamp: <unix seconds>` with
`X-Reconciler-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`. Reads need none.
Every error answer is `{"error": "...", "field": "..."}`."""


@dataclass(frozen=True)
class PathParam:
    name: str
    description: str
    integer: bool = False


@dataclass(frozen=True)
class RouteSpec:
    """One route of the API (``path`` in aiohttp/OpenAPI ``{name}`` syntax)."""

    method: str
    path: str
    operation_id: str
    summary: str
    response: Any
    status: int = 200
    body: type | None = None
    query: type | None = None
    path_params: tuple[PathParam, ...] = ()
    auth: bool = False
    tag: str = "ozmap"
    description: str = ""
    errors: tuple[int, ...] = field(default=(400, 404, 502, 503))


def _query_parameters(query: type) -> list[dict[str, Any]]:
    schema = msgspec.json.schema(query)
    body = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
    required = set(body.get("required", ()))
    params = []
    for name, prop in body.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def document(routes: Sequence[RouteSpec]) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    types: list[Any] = [Problem]
    for route in routes:
        types.append(route.response)
        if route.body is not None:
            types.append(route.body)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    problem_schema, rest = schemas[0], schemas[1:]
    iterator = iter(rest)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        response_schema = next(iterator)
        body_schema = next(iterator) if route.body is not None else None
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {
                str(route.status): {
                    "description": route.summary,
                    "content": {"application/json": {"schema": response_schema}},
                }
            },
        }
        if route.description:
            operation["description"] = route.description
        parameters = [
            {
                "name": p.name,
                "in": "path",
                "required": True,
                "description": p.description,
                "schema": {"type": "integer", "minimum": 1}
                if p.integer
                else {"type": "string", "minLength": 1},
            }
            for p in route.path_params
        ]
        if route.query is not None:
            parameters.extend(_query_parameters(route.query))
        if parameters:
            operation["parameters"] = parameters
        if body_schema is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        codes = [*route.errors, *((401, 403) if route.auth else ())]
        for code in sorted(set(codes)):
            operation["responses"][str(code)] = {
                "description": _ERRORS[code],
                "content": {"application/json": {"schema": problem_schema}},
            }
        if route.auth:
            operation["security"] = [{"bearer": []}, {"signature": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "reconciler — OZmap guide API", "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the shared webhook secret"},
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Reconciler-Signature",
                    "description": "sha256=<HMAC-SHA256 of '<X-Reconciler-Timestamp>.<body>'>, valid 5 minutes",
                },
            },
        },
    }
