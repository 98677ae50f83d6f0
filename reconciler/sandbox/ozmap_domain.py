"""OZmap domain rules of the sandbox: create/patch/delete per collection, validation, populate, batch updates.

Owns what the server does beyond storing JSON (contract sections 4 and 6): defaults and ``kind`` per collection,
``creatorData``, required fields (400 ``{"message"}``), FTTH client validation (``status`` ∈ {0, 1}, complete
``onu``, unique ``code``, ``kind`` ``"ftth"``), splitter ports/powers (first ``currentPower`` write also sets
``installPower``), the OLT → Slot → PON chain (a slot/PON joins its parent's ``connectables``), soft delete, and
``populate``. Properties, drops, ports and feasibility live in ``ozmap_network``.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from reconciler.sandbox import ozmap_network as network
from reconciler.sandbox.ozmap_geo import point_of
from reconciler.sandbox.ozmap_query import project
from reconciler.sandbox.ozmap_store import OzmapStore
from reconciler.sandbox.ozmap_values import ApiError, Record, bad_request

KNOWN_COLLECTIONS: Final = frozenset(
    {
        "projects", "project-groups", "boxes", "buildings", "horizontal-condominiums", "box-types", "box-templates",
        "building-types", "pops", "pop-types", "poles", "pole-types", "points", "junction-boxes",
        "junction-box-types", "cables", "cable-types", "fibers", "splitters", "splitter-types", "connectors",
        "connector-types", "fusions", "fusion-types", "dios", "dio-types", "switches", "switch-types", "cords",
        "olts", "olt-types", "slots", "pons", "shelfs", "shelf-types", "ftth-clients", "properties", "prospects",
        "pendencies", "pendency-types", "tags", "colors", "fiber-profiles", "regions", "region-types", "roles",
        "users", "system-configs",
    }
)  # fmt: skip
_TAGS: Final = ("tags",)
REFS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "properties": {
        "box": ("boxes", "buildings"),
        "client": ("ftth-clients",),
        "project": ("projects",),
        "pole": ("poles",),
        "drop": ("cables",),
        "parent": ("buildings", "boxes"),
        "tags": _TAGS,
        "cables": ("cables",),
    },
    "boxes": {
        "project": ("projects",),
        "pole": ("poles",),
        "boxType": ("box-types",),
        "tags": _TAGS,
        "color": ("colors",),
        "cables": ("cables",),
    },
    "buildings": {"project": ("projects",), "buildingType": ("building-types",), "tags": _TAGS},
    "splitters": {
        "parent": ("boxes", "buildings"),
        "project": ("projects",),
        "splitterType": ("splitter-types",),
        "tags": _TAGS,
    },
    "cables": {
        "project": ("projects",),
        "cableType": ("cable-types",),
        "boxA": ("boxes", "buildings", "properties"),
        "boxB": ("boxes", "buildings", "properties"),
        "tags": _TAGS,
    },
    "olts": {
        "parent": ("pops", "boxes"),
        "project": ("projects",),
        "oltType": ("olt-types",),
        "connectables": ("slots",),
    },
    "slots": {"parent": ("olts",), "olt": ("olts",), "project": ("projects",), "connectables": ("pons",)},
    "pons": {"parent": ("slots",), "slot": ("slots",), "project": ("projects",)},
    "ftth-clients": {"tags": _TAGS},
    "pendencies": {
        "project": ("projects",),
        "pendencyType": ("pendency-types",),
        "owner": ("users",),
        "responsibles": ("users",),
        "tags": _TAGS,
    },
    "prospects": {"tags": _TAGS},
    "poles": {"project": ("projects",), "poleType": ("pole-types",), "tags": _TAGS},
    "pops": {"project": ("projects",), "popType": ("pop-types",), "pole": ("poles",), "tags": _TAGS},
}
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "projects": ("name",),
    "boxes": ("project", "coords", "hierarchyLevel", "boxType", "implanted"),
    "buildings": ("project", "coords"),
    "poles": ("project", "coords"),
    "splitters": ("parent", "splitterType"),
    "cables": ("project", "cableType"),
    "properties": ("project",),
    "ftth-clients": ("code",),
    "pendencies": ("owner", "project", "pendencyType", "coords"),
    "tags": ("name",),
}
SERVER_FIELDS: Final = frozenset(
    {"id", "_id", "kind", "createdAt", "updatedAt", "deletedAt", "creatorData", "__v"}
)
NOT_UPDATABLE: Final[dict[str, frozenset[str]]] = {
    "properties": frozenset({"drop", "parent", "project"}),
    "boxes": frozenset({"project"}),
}
DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "boxes": {
        "draft": False, "certified": False, "shared": False, "default_reserve": 0, "underground": False,
        "address": None, "observation": None, "pole": None, "tags": [], "cables": [],
    },
    "buildings": {"implanted": True, "hasProblem": False, "address": None, "tags": [], "cables": []},
    "ftth-clients": network.CLIENT_DEFAULTS,
    "cables": {"tags": [], "poles": [], "fiberNumber": 1, "looseNumber": 1, "implanted": True},
    "olts": {"port": 22, "connectables": [], "implanted": True, "isDrop": False},
    "slots": {"connectables": []},
    "pons": {"connectables": [], "potency": 0},
    "pendencies": {"solved": False, "responsibles": [], "tags": []},
    "prospects": {"tags": []},
    "tags": {"allowedTypes": []},
    "poles": {"tags": []},
}  # fmt: skip
_SPLITTER_LOSS_DB: Final = {2: 3.7, 4: 7.1, 8: 10.5, 16: 13.7, 32: 17.1, 64: 20.5}


def check_collection(store: OzmapStore, collection: str) -> None:
    if collection not in KNOWN_COLLECTIONS and not store.has_collection(collection):
        raise ApiError(404, f"Cannot find resource '{collection}'")


def live_or_404(store: OzmapStore, collection: str, record_id: str) -> Record:
    record = store.live(collection, record_id)
    if record is None:
        raise ApiError(404, f"{collection} {record_id} not found")
    return record


def check_coords(value: Any) -> list[float]:
    """A valid ``[lng, lat]`` pair (``{lat, lng}`` accepted and turned around); 400 otherwise."""
    if isinstance(value, dict) and "lat" in value and "lng" in value:
        value = [value["lng"], value["lat"]]
    point = point_of(value)
    if point is None or not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180) or len(value) != 2:
        raise bad_request(f"invalid coords {value!r}: expected [lng, lat]")
    return [point[1], point[0]]


def clean_input(body: Any, *, keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return {k: v for k, v in body.items() if k not in SERVER_FIELDS or k in keep}


# -- create --------------------------------------------------------------------------------------------------


def create(store: OzmapStore, collection: str, body: Any, creator: Record) -> Record:
    """``POST /<collection>``: validate, apply defaults and side effects, store; returns the stored record."""
    check_collection(store, collection)
    fields = clean_input(body, keep=frozenset({"kind"}) if collection == "cables" else frozenset())
    missing = [name for name in REQUIRED.get(collection, ()) if fields.get(name) in (None, "", [])]
    if missing:
        raise bad_request(f"{collection}: missing required field(s): {', '.join(missing)}")
    if "coords" in fields and fields["coords"] is not None:
        fields["coords"] = check_coords(fields["coords"])
    elif "coords" not in fields and isinstance(fields.get("lat"), int | float) and "lng" in fields:
        fields["coords"] = check_coords({"lat": fields["lat"], "lng": fields["lng"]})
    fields.pop("lat", None)
    fields.pop("lng", None)
    if collection == "properties":
        return network.create_property(store, fields, creator)
    record = copy.deepcopy(DEFAULTS.get(collection, {}))
    record.update(fields)
    record["creatorData"] = creator
    special = _CREATE_HOOKS.get(collection)
    if special is not None:
        special(store, record)
    return store.insert(collection, record)


def _check_project(store: OzmapStore, record: Record) -> None:
    if store.live("projects", record.get("project")) is None:
        raise bad_request(f"project {record.get('project')!r} not found")


def _create_box(store: OzmapStore, record: Record) -> None:
    _check_project(store, record)
    if not isinstance(record["implanted"], bool):
        raise bad_request("implanted must be a boolean")
    if not isinstance(record["hierarchyLevel"], int) or isinstance(record["hierarchyLevel"], bool):
        raise bad_request("hierarchyLevel must be an integer")
    if not record.get("name"):
        box_type = store.live("box-types", record["boxType"]) or {}
        record["name"] = f"{box_type.get('prefix') or 'CTO'}-{store.next_counter('boxes'):04d}"


def _create_splitter(store: OzmapStore, record: Record) -> None:
    parent = store.live("boxes", record["parent"]) or store.live("buildings", record["parent"])
    if parent is None:
        raise bad_request(f"parent {record['parent']!r} not found")
    record.setdefault("project", parent.get("project"))
    splitter_type = store.live("splitter-types", record["splitterType"]) or {}
    ratio = record.get("ratio") or splitter_type.get("ratio") or {}
    inputs = _positive_int(ratio.get("input", splitter_type.get("input", 1)), "ratio.input")
    outputs = _positive_int(ratio.get("output", splitter_type.get("output", 8)), "ratio.output")
    record["ratio"] = {"input": inputs, "output": outputs}
    record.setdefault("isDrop", bool(splitter_type.get("isDrop", False)))
    record.setdefault("implanted", True)
    record.setdefault("isBalanced", True)
    if not record.get("name"):
        siblings = store.lookup("splitters", "parent", parent["id"])
        record["name"] = f"Splitter {len(siblings) + 1}"
    record.setdefault("connectables", {"input": [None] * inputs, "output": [None] * outputs})
    record.setdefault(
        "ports", [{"index": i, "id": store.new_id(), "blocked": False, "tags": []} for i in range(outputs)]
    )
    loss = splitter_type.get("attenuation") or _SPLITTER_LOSS_DB.get(outputs)
    record.setdefault("attenuation", loss if isinstance(loss, list) else [loss] * outputs)
    record.setdefault("currentPower", [None] * outputs)
    record.setdefault("installPower", [None] * outputs)
    record.setdefault("tags", [])
    _apply_power_rule(record, record)


def _positive_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise bad_request(f"{what} must be a positive integer")
    return value


def _create_client(store: OzmapStore, record: Record) -> None:
    network.validate_client(store, record, current_id=None)


def _create_slot(store: OzmapStore, record: Record) -> None:
    _attach_to_parent(store, record, "olts", "olt")


def _create_pon(store: OzmapStore, record: Record) -> None:
    if not isinstance(record.get("potency"), int | float) or isinstance(record.get("potency"), bool):
        raise bad_request("potency must be a number")
    _attach_to_parent(store, record, "slots", "slot")


def _attach_to_parent(store: OzmapStore, record: Record, parents: str, field: str) -> None:
    parent_id = record.get(field) or record.get("parent")
    parent = store.live(parents, parent_id)
    if parent is None:
        raise bad_request(f"{field} {parent_id!r} not found")
    record["parent"] = record[field] = parent["id"]
    record.setdefault("project", parent.get("project"))
    record["id"] = record_id = store.new_id()
    store.update(parents, parent["id"], {"connectables": [*parent.get("connectables", []), record_id]})


def _create_cable(store: OzmapStore, record: Record) -> None:
    _check_project(store, record)
    record.setdefault("kind", "Cable")
    if record["kind"] not in ("Cable", "Drop"):
        raise bad_request("kind must be 'Cable' or 'Drop'")
    record["id"] = store.new_id()
    for end in ("boxA", "boxB"):
        box = store.live("boxes", record.get(end))
        if box is not None:
            store.update("boxes", box["id"], {"cables": [*box.get("cables", []), record["id"]]})


_CREATE_HOOKS: Final = {
    "boxes": _create_box,
    "splitters": _create_splitter,
    "ftth-clients": _create_client,
    "slots": _create_slot,
    "pons": _create_pon,
    "cables": _create_cable,
    "pendencies": _check_project,
}


# -- validation ----------------------------------------------------------------------------------------------


def _apply_power_rule(old: Record, changes: Record) -> None:
    """Splitter powers: per-output lists; an output's first ``currentPower`` also sets its ``installPower``."""
    outputs = len(old.get("connectables", {}).get("output", [])) or len(changes.get("currentPower") or [])
    for name in ("currentPower", "installPower"):
        if name in changes:
            values = changes[name]
            if not isinstance(values, list) or len(values) != outputs:
                raise bad_request(f"{name} must be a list of {outputs} numbers or nulls")
            if any(v is not None and (isinstance(v, bool) or not isinstance(v, int | float)) for v in values):
                raise bad_request(f"{name} must hold numbers or nulls")
    if "currentPower" in changes:
        install = list(changes.get("installPower") or old.get("installPower") or [None] * outputs)
        install += [None] * (outputs - len(install))
        for i, value in enumerate(changes["currentPower"]):
            if value is not None and install[i] is None:
                install[i] = value
        changes["installPower"] = install


# -- patch / delete / batch ------------------------------------------------------------------------------------


def patch(store: OzmapStore, collection: str, record_id: str, body: Any) -> None:
    """``PATCH /<collection>/<id>``: only the fields sent change; ``updatedAt`` is bumped; 404/400."""
    check_collection(store, collection)
    record = live_or_404(store, collection, record_id)
    changes = clean_input(body)
    for name in NOT_UPDATABLE.get(collection, ()):
        changes.pop(name, None)
    if changes.get("coords") is not None:
        changes["coords"] = check_coords(changes["coords"])
    if collection == "properties":
        network.patch_property(store, record, changes)
        return
    if collection == "ftth-clients":
        network.validate_client(store, changes, current_id=record_id)
    elif collection == "splitters":
        _apply_power_rule(record, changes)
    elif collection == "pons" and "potency" in changes:
        potency = changes["potency"]
        if isinstance(potency, bool) or not isinstance(potency, int | float):
            raise bad_request("potency must be a number")
    store.update(collection, record_id, changes)


def delete(store: OzmapStore, collection: str, record_id: str) -> None:
    """``DELETE /<collection>/<id>``: soft delete plus the collection's side effects; 404 when missing."""
    check_collection(store, collection)
    record = live_or_404(store, collection, record_id)
    if collection == "properties":
        network.delete_property(store, record)
        return
    if collection == "ftth-clients":
        network.detach_client_everywhere(store, record_id)
    elif collection == "cables" and record.get("kind") == "Drop":
        network.delete_drop(store, record)
        return
    elif collection in ("slots", "pons"):
        parents = "olts" if collection == "slots" else "slots"
        parent = store.live(parents, record.get("parent"))
        if parent is not None:
            remaining = [c for c in parent.get("connectables", []) if c != record_id]
            store.update(parents, parent["id"], {"connectables": remaining})
    store.soft_delete(collection, record_id)


def batch_update(store: OzmapStore, collection: str, body: Any) -> int:
    """``POST /<collection>/batch-update {filter, update}``: PATCH every match; returns how many."""
    check_collection(store, collection)
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    update, flt = body.get("update"), body.get("filter")
    if not isinstance(update, dict) or not update:
        raise bad_request("update must be a non-empty object")
    if flt is None:
        raise bad_request("filter is required")
    ids = [i for i in store.query(collection, flt, None) if store.live(collection, i) is not None]
    if collection == "ftth-clients":
        if "code" in update and len(ids) > 1:
            raise bad_request("code must be unique: batch-update would give it to several clients")
        network.validate_client(store, {k: v for k, v in update.items() if k != "code"}, current_id=None)
    for record_id in ids:
        patch(store, collection, record_id, update)
    return len(ids)


# -- rendering -------------------------------------------------------------------------------------------------


def render(store: OzmapStore, collection: str, row: Record, select: list[str], populate: list[str]) -> Record:
    """A stored row as the API shows it: ``select`` projection, then ``populate`` of reference fields."""
    out = project(row, select) if select else row
    return populate_fields(store, collection, out, populate) if populate else out


def populate_fields(store: OzmapStore, collection: str, row: Record, paths: list[str]) -> Record:
    """Replace reference ids by their records (``box.project`` nests); unknown fields are ignored."""
    refs = REFS.get(collection, {})
    out = dict(row)
    for path in paths:
        head, _, rest = path.partition(".")
        targets = refs.get(head)
        if targets is None or head not in out:
            continue
        value = out[head]
        if isinstance(value, list):
            found = [_resolve(store, targets, element, rest) for element in value]
            out[head] = [element for element in found if element is not None]
        elif isinstance(value, str):
            out[head] = _resolve(store, targets, value, rest)
        elif isinstance(value, dict) and rest and isinstance(value.get("id"), str):
            out[head] = _resolve(store, targets, value["id"], rest)
    return out


def _resolve(store: OzmapStore, targets: tuple[str, ...], value: Any, rest: str) -> Record | None:
    if not isinstance(value, str):
        return None
    for collection in targets:
        record = store.row(collection, value)
        if record is not None:
            return populate_fields(store, collection, record, [rest]) if rest else record
    return None
