"""Pendencies, prospects and tag queries of the Integrator's Guide (seed 001; ozmap.md F12, section 4.7).

- **Pendency** (``POST /pendencies``): OZmap needs ``owner``, ``project``, ``pendencyType`` and ``coords``. The
  project comes from ``project_id``, else from the box (``box_id``) or the client's premises (``client_code``);
  the position from ``lat``/``lng``, else from that box or premises; the type from ``pendency_type`` (an id or
  a name), else the instance's first pendency type; the owner from ``owner_id``, else the API key's user
  (``GET /authenticated``, else the key's ``user`` claim) [assume].
- **Prospect** (``POST /prospects``): ``viable`` is what the caller says, else the feasibility at the point.
- **Tag query** (mass-outage check): the tags on the client, on its premises and on its box, by name;
  ``tag`` given → ``has_tag`` says whether any of them is named so [assume: an outage tag is put on the client,
  the premises or the box].
"""

from __future__ import annotations

from reconciler import errors
from reconciler.connectors.ozmap import views
from reconciler.connectors.ozmap.guide_calls import Container
from reconciler.guide import models
from reconciler.guide.operations import Guide
from reconciler.guide.validation import Conflict, InvalidInput, Missing

__all__ = ["Notes"]


def _ids(values: list[str | views.Ref]) -> list[str]:
    out = [v if isinstance(v, str) else v.key for v in values]
    return [v for v in out if v]


class Notes:
    """Pendencies, prospects and tags."""

    def __init__(self, guide: Guide) -> None:
        self.guide = guide
        self.calls = guide.calls

    async def create_pendency(self, request: models.PendencyRequest) -> models.PendencyCreated:
        project, lat, lng = request.project_id, request.lat, request.lng
        if request.box_id:
            try:
                box = await self.calls.container(request.box_id)
            except errors.NotFound:
                raise Missing(f"no box or building {request.box_id} in OZmap") from None
            project = project or box.project
            lat, lng = (lat, lng) if lat is not None else (box.lat, box.lng)
        if request.client_code:
            client = await self.guide.client(request.client_code)
            props = await self.calls.properties_of(client.key)
            if props:
                project = project or props[0].project
                lat, lng = (lat, lng) if lat is not None else (props[0].lat, props[0].lng)
        if not project:
            raise InvalidInput("a pendency needs project_id, box_id or client_code", "project_id")
        if lat is None or lng is None:
            raise InvalidInput("a pendency needs lat/lng (or a box_id or client_code with a position)", "lat")
        kind = await self._pendency_type(request.pendency_type)
        owner = request.owner_id or await self.calls.user_id()
        if not owner:
            raise InvalidInput("the API key's user is unknown: give owner_id", "owner_id")
        body: dict[str, object] = {
            "name": request.name,
            "project": project,
            "pendencyType": kind,
            "coords": [lng, lat],
            "owner": owner,
        }
        if request.description:
            body["description"] = request.description
        new_id = await self.calls.create("pendencies", body)
        return models.PendencyCreated(new_id, request.name, project, kind, lat, lng)

    async def _pendency_type(self, wanted: str | None) -> str:
        types = await self.calls.named("pendency-types")
        if wanted is None:
            if not types:
                raise Conflict("OZmap has no pendency type: create one, or give pendency_type")
            return types[0].id
        for kind in types:
            if wanted in (kind.id, kind.name):
                return kind.id
        known = ", ".join(sorted(t.name or t.id for t in types)) or "none"
        raise InvalidInput(f"unknown pendency_type {wanted!r} (known: {known})", "pendency_type")

    async def create_prospect(self, request: models.ProspectRequest) -> models.ProspectCreated:
        viable = request.viable
        if viable is None:
            query = models.FeasibilityQuery(lat=request.lat, lng=request.lng, radius=request.radius)
            viable = (await self.guide.feasibility(query)).viable
        body: dict[str, object] = {
            "name": request.name,
            "coords": [request.lng, request.lat],
            "viable": viable,
        }
        for key in ("phone", "code", "address", "observation"):
            value = getattr(request, key)
            if value:
                body[key] = value
        new_id = await self.calls.create("prospects", body)
        return models.ProspectCreated(new_id, request.name, viable)

    async def tags(self, code: str, tag: str | None = None) -> models.TagQuery:
        client = await self.guide.client(code)
        props = await self.calls.properties_of(client.key, populate="box")
        owners: list[tuple[str, models.TagOwner]] = [(t, "client") for t in _ids(client.tags)]
        for prop in props:
            owners.extend((t, "property") for t in _ids(prop.tags))
            if isinstance(prop.box, Container):
                owners.extend((t, "box") for t in _ids(prop.box.tags))
        names = (
            {t.id: t.name for t in await self.calls.named("tags", [t for t, _ in owners])} if owners else {}
        )
        refs = [models.TagRef(t, names.get(t), on) for t, on in dict.fromkeys(owners)]
        has = None if tag is None else any(r.name == tag or r.id == tag for r in refs)
        return models.TagQuery(code=code, tags=refs, tag=tag, has_tag=has)
