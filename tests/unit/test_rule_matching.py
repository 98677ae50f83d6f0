"""The rule language beyond field updates: ``on-unmatched``, ``[apply]``, ``when-missing = "omit"``, deferred skips,
``[[source.check]] on-fail``, and the ``iff``/``lookup`` expression functions."""

from __future__ import annotations

import pytest

from reconciler.connectors.base import CollectionSchema
from reconciler.errors import RuleError
from reconciler.model import Desired, Quarantined, Record, Skipped
from reconciler.rules import transforms
from reconciler.rules.compiling import CompiledRule, compile_rule
from reconciler.rules.expressions import compile_expression
from reconciler.rules.loading import load_rule_file
from reconciler.rules.lookups import AMBIGUOUS
from reconciler.rules.syntax import ExpressionError

PATH = "rules/demo/logins.toml"
LOGINS = CollectionSchema(fields=frozenset({"login", "online", "box", "port", "ativo", "signal"}))
CLIENTS = CollectionSchema(
    fields=frozenset({"id", "code", "status", "box_id", "port", "power"}),
    writable=frozenset({"code", "status", "box_id", "port", "power"}),
    operations={"cancel": frozenset({"disconnect"})},
)
HEAD = """\
[entity]
label = "{login}"

[source]
system = "ixc"
collection = "logins"

[target]
system = "ozmap"
collection = "clients"

[lookups.boxes]
links = "boxes"
reverse = true
"""


def compile_text(text: str, **options: bool) -> CompiledRule:
    return compile_rule(
        load_rule_file(PATH, text=HEAD + text),
        source=LOGINS,
        target=CLIENTS,
        lookup_schemas={},
        options=options,
    )


def record(**fields: str | None) -> Record:
    return Record(id="7", fields=dict(fields))


TABLES = {"boxes": {"45": "ozbox-1", "46": AMBIGUOUS}}

STATUS = """
[match]
first-sight = ["code"]
on-unmatched = "ignore"

[fields.code]
from = "login"
update = false

[fields.status]
expr = "iff(online == 'S', 0, iff(online == 'N', 1, null))"
when-missing = "omit"
"""


def test_update_only_rule_maps_its_key_without_writing_it() -> None:
    rule = compile_text(STATUS)
    assert (rule.on_unmatched, rule.apply_action, rule.operation) == ("ignore", "update", "")
    assert rule.updatable == frozenset({"status"})


@pytest.mark.parametrize(("online", "fields"), [("S", {"status": 0}), ("N", {"status": 1}), ("SS", {})])
def test_omitted_fields_leave_the_desired_record(online: str, fields: dict[str, int]) -> None:
    desired = compile_text(STATUS).normalize(record(login="ana", online=online), {})
    assert isinstance(desired, Desired)
    assert desired.fields == {"code": "ana", **fields}
    assert desired.natural_key == {"code": "ana"}


def test_lookup_in_an_expression_reads_the_tables() -> None:
    rule = compile_text(
        """
[match]
first-sight = ["code"]

[fields.code]
from = "login"

[fields.box_id]
expr = "lookup('boxes', box)"
when-missing = "quarantine"
reason = "box {box} is not linked"
"""
    )
    assert rule.normalize(record(login="a", box="45"), TABLES).fields["box_id"] == "ozbox-1"  # type: ignore[union-attr]
    missing = rule.normalize(record(login="a", box="99"), TABLES)
    assert isinstance(missing, Quarantined) and missing.reason == "box 99 is not linked"
    shared = rule.normalize(record(login="a", box="46"), TABLES)
    assert isinstance(shared, Quarantined) and "2 records share the key '46'" in shared.reason


CREATION = """
[match]
first-sight = ["code"]

[options.free_port]
default = false

[fields.code]
from = "login"
update = false

[fields.box_id]
expr = "lookup('boxes', box)"
when-missing = "skip"
reason = "box {box} is not linked"
update = false

[fields.port]
expr = "iff(port != '0', int(port), null)"
when-missing = "skip"
reason = "no port"
default = 0
default-if = "free_port"
update = false
"""


def test_a_missing_create_only_field_blocks_only_the_create() -> None:
    rule = compile_text(CREATION)
    desired = rule.normalize(record(login="a", box="99", port="3"), TABLES)
    assert isinstance(desired, Desired)  # still matched (and linked) by code
    assert desired.blocked == "box 99 is not linked"
    assert desired.fields == {"code": "a", "port": 3}
    no_port = rule.normalize(record(login="a", box="45", port="0"), TABLES)
    assert isinstance(no_port, Desired) and no_port.blocked == "no port"
    with_option = compile_text(CREATION, free_port=True).normalize(
        record(login="a", box="45", port="0"), TABLES
    )
    assert isinstance(with_option, Desired) and not with_option.blocked and with_option.fields["port"] == 0


def test_skip_check_and_unmatched_reason() -> None:
    rule = compile_text(
        """
[[source.check]]
expr = "lookup('boxes', box) != null"
reason = "box {box} is not linked"
on-fail = "skip"

[match]
first-sight = ["code"]
on-unmatched = "skip"
unmatched-reason = "no OZmap client with code {login}"

[fields.code]
from = "login"
update = false
"""
    )
    skipped = rule.normalize(record(login="a", box="99"), TABLES)
    assert isinstance(skipped, Skipped) and skipped.reason == "box 99 is not linked"
    desired = rule.normalize(record(login="a", box="45"), TABLES)
    assert isinstance(desired, Desired) and desired.unmatched_reason == "no OZmap client with code a"


def test_operation_rule_passes_its_arguments() -> None:
    rule = compile_text(
        """
[match]
first-sight = ["code"]
on-unmatched = "ignore"

[apply]
action = "operation"
operation = "cancel"

[options.unplug]
default = true

[fields.code]
from = "login"

[fields.disconnect]
expr = "option('unplug')"
"""
    )
    assert (rule.apply_action, rule.operation) == ("operation", "cancel")
    desired = rule.normalize(record(login="a"), {})
    assert isinstance(desired, Desired) and desired.fields == {"code": "a", "disconnect": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '[apply]\naction = "operation"\n\n[match]\nfirst-sight = ["code"]\non-unmatched = "ignore"\n'
            '\n[fields.code]\nfrom = "login"\n',
            '15: apply: action = "operation" and operation = "NAME" go together',
            id="operation-without-name",
        ),
        pytest.param(
            '[apply]\naction = "delete"\n\n[match]\nfirst-sight = ["code"]\n\n[fields.code]\nfrom = "login"\n',
            '18: match.on-unmatched: a rule whose apply action is "delete" cannot create; '
            'set on-unmatched = "skip" or "ignore"',
            id="delete-rule-creating",
        ),
        pytest.param(
            '[apply]\naction = "delete"\n\n[match]\non-unmatched = "ignore"\n\n[fields.code]\nfrom = "login"\n',
            '18: match.first-sight: a rule whose apply action is "delete" needs a natural key',
            id="delete-rule-without-key",
        ),
        pytest.param(
            '[match]\nfirst-sight = ["code"]\nunmatched-reason = "x"\n\n[fields.code]\nfrom = "login"\n',
            '17: match.unmatched-reason: only used with on-unmatched = "skip"',
            id="reason-without-skip",
        ),
        pytest.param(
            '[apply]\naction = "operation"\noperation = "explode"\n\n[match]\nfirst-sight = ["code"]\n'
            'on-unmatched = "ignore"\n\n[fields.code]\nfrom = "login"\n',
            "17: apply.operation: ozmap clients has no operation 'explode'; known: cancel",
            id="unknown-operation",
        ),
        pytest.param(
            '[apply]\naction = "operation"\noperation = "cancel"\n\n[match]\nfirst-sight = ["code"]\n'
            'on-unmatched = "ignore"\n\n[fields.code]\nfrom = "login"\n\n[fields.status]\nvalue = 1\n',
            "26: fields.status: 'status' is neither a first-sight key nor an argument of operation 'cancel' "
            "(it takes disconnect)",
            id="not-an-operation-argument",
        ),
        pytest.param(
            '[apply]\naction = "delete"\n\n[match]\nfirst-sight = ["code"]\non-unmatched = "ignore"\n'
            '\n[fields.code]\nfrom = "login"\n\n[fields.status]\nvalue = 1\n',
            "25: fields.status: 'status' is not a first-sight key; a delete rule maps only its natural key",
            id="delete-rule-maps-more-than-its-key",
        ),
        pytest.param(
            '[match]\nfirst-sight = ["id"]\n\n[fields.id]\nfrom = "login"\nupdate = false\n',
            "18: fields.id: 'id' is not a writable field of ozmap clients",
            id="creating-rule-must-write-its-key",
        ),
        pytest.param(
            "[fields.status]\nexpr = \"lookup('sites', box)\"\n",
            "16: fields.status.expr: unknown lookup 'sites' at column 8; known: boxes",
            id="unknown-lookup-in-expr",
        ),
    ],
)
def test_errors(text: str, expected: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_text(text)
    assert str(info.value) == f"{PATH}:{expected}"


def test_iff_evaluates_only_the_chosen_branch() -> None:
    expression = compile_expression("iff(present(n), int(n), 0)", fields={"n"})
    assert expression({"n": "12"}) == 12
    assert expression({"n": ""}) == 0  # int("") is never evaluated
    assert compile_expression("iff(true, 1, 2)", fields=()).fn({}) == 1


def test_lookup_is_not_available_in_target_expressions() -> None:
    with pytest.raises(ExpressionError, match="lookup\\(\\) is not available here"):
        compile_expression("lookup('boxes', x)", fields={"x"})
    with pytest.raises(ExpressionError, match="quoted lookup name"):
        compile_expression("lookup(x, x)", fields={"x"}, lookups=("boxes",))


@pytest.mark.parametrize(
    ("value", "reading", "coordinate"),
    [("-21.35", -21.35, -21.35), ("0.00", None, None), ("0", None, None), ("", None, None), (None, None, None),
     ("-27,5", -27.5, -27.5)],
)  # fmt: skip
def test_ixc_reading_and_coordinate_transforms(
    value: str | None, reading: float | None, coordinate: float | None
) -> None:
    assert transforms.ixc_reading(value) == reading
    assert transforms.ixc_coordinate(value) == coordinate
