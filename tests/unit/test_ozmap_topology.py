"""The OZmap topology index answers every fibre as the walk up the fibre graph does, question by question.

:class:`Topology` resolves every chain once when it is built (no graph, no memo kept). Its answers are checked
against the rule written out as a walk — PON fibre → found; else the network splitter whose outputs list the fibre
(the last listed), its first input, and so on, at most ``MAX_DEPTH`` hops, a revisited fibre ending the walk — on
hand-made chains, dead ends, cycles and the depth limit, and on generated graphs. The index is a few numpy
arrays searched by 64-bit hash: fibres made to share a hash (a crafted ``key``) are still told apart exactly, and a
page's questions asked together get the answers of the same questions asked one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.connectors.ozmap.topology import MAX_DEPTH, Topology, TopologyBuilder, first_input, topology
from reconciler.connectors.ozmap.views import (
    Fibres,
    Inputs,
    NetworkSplitterView,
    OltView,
    PonView,
    ServiceSplitterView,
    SlotView,
)

OLT = OltView(id="olt", name="OLT-1", ip="10.0.0.1", connectables=["slot"])
SLOT = SlotView(id="slot", connectables=["pon"])


def service(fibre: str | None) -> ServiceSplitterView:
    """A service splitter fed by ``fibre``."""
    return ServiceSplitterView(id=f"svc-{fibre}", is_drop=True, connectables=Inputs(input=[fibre]))


def network(sid: str, first: str | None, *outputs: str | None, is_drop: bool = False) -> NetworkSplitterView:
    inputs: list[str | None] = [] if first is None else [first]
    return NetworkSplitterView(
        id=sid, is_drop=is_drop, connectables=Fibres(input=inputs, output=list(outputs))
    )


def chain(length: int, *, top: str = "feed") -> list[NetworkSplitterView]:
    """``length`` network splitters in a row: splitter k takes fibre ``c{k-1}`` (``c0`` = ``top``), gives ``c{k}``."""
    fibres = [top, *(f"c{k}" for k in range(1, length + 1))]
    return [network(f"n{k}", fibres[k - 1], fibres[k]) for k in range(1, length + 1)]


def index(splitters: Sequence[NetworkSplitterView], pon_fibres: Sequence[str] = ("feed",)) -> Topology:
    pon = PonView(id="pon", connectables=list(pon_fibres))
    return topology(pons=[pon], slots=[SLOT], olts=[OLT], network_splitters=splitters)


def walk(
    fibre: str | None,
    *,
    pons: Sequence[PonView],
    slots: Sequence[SlotView],
    olts: Sequence[OltView],
    splitters: Sequence[NetworkSplitterView],
) -> OltView | None:
    """The rule as a walk from one fibre, nothing remembered between questions (the oracle)."""
    by_id = {o.id: o for o in olts}
    slot_of_pon = {p.id: p.slot or p.parent or "" for p in pons}
    for slot in slots:
        slot_of_pon.update((pon, slot.id) for pon in slot.connectables if pon)
    olt_of_slot = {s.id: s.olt or s.parent or "" for s in slots}
    for olt in olts:
        olt_of_slot.update((sid, olt.id) for sid in olt.connectables if sid)
    at_pon: dict[str, OltView | None] = {}
    for pon in pons:
        at_pon.update((f, by_id.get(olt_of_slot.get(slot_of_pon[pon.id], ""))) for f in pon.connectables if f)
    upstream = {
        f: s
        for s in splitters
        if not s.is_drop and s.connectables is not None
        for f in s.connectables.output
        if f
    }
    if fibre is None:
        return None
    if fibre in at_pon:
        return at_pon[fibre]
    seen = {fibre}
    for _ in range(MAX_DEPTH):
        splitter = upstream.get(fibre)
        nxt = first_input(splitter) if splitter is not None else None
        if nxt is None or nxt in seen:
            return None
        if nxt in at_pon:
            return at_pon[nxt]
        seen.add(nxt)
        fibre = nxt
    return None


def test_a_fibre_of_a_pon_leads_to_the_olt_of_its_slot() -> None:
    topo = index([])
    assert topo.olt_for(service("feed")) is OLT
    assert topo.olt_for(service("elsewhere")) is None
    assert topo.olt_for(None) is None
    assert topo.olt_for(ServiceSplitterView(id="no-input")) is None
    assert topo.olt_for(service(None)) is None


def test_the_slot_and_olt_are_read_from_either_side_of_the_link() -> None:
    olts = [OltView(id="a", ip="1"), OltView(id="b", ip="2", connectables=["s2"])]
    slots = [SlotView(id="s1", olt="a"), SlotView(id="s2", parent="a", connectables=["p3"])]
    pons = [
        PonView(id="p1", slot="s1", connectables=["f1"]),
        PonView(id="p2", parent="s2", connectables=["f2"]),  # s2 → b (the OLT's connectables win over parent)
        PonView(id="p3", slot="s1", connectables=["f3"]),  # the slot listing p3 wins over the PON's own slot
        PonView(id="p4", slot="gone", connectables=["f4"]),
    ]
    topo = topology(pons=pons, slots=slots, olts=olts, network_splitters=[])
    assert [o.id if o else None for o in (topo.olt_for(service(f)) for f in ("f1", "f2", "f3", "f4"))] == [
        "a",
        "b",
        "b",
        None,
    ]


def test_a_chain_is_followed_up_to_max_depth_hops_and_no_further() -> None:
    topo = index(chain(MAX_DEPTH + 3))
    for k in range(1, MAX_DEPTH + 4):  # the fibre out of splitter k is k hops from the PON fibre
        assert topo.olt_for(service(f"c{k}")) is (OLT if k <= MAX_DEPTH else None), k


def test_the_far_end_of_a_chain_does_not_hide_its_near_end() -> None:
    # listed from the far end first: the splitters nearer the PON must still be resolved on their own
    for length in range(MAX_DEPTH, 2 * MAX_DEPTH + 2):
        topo = index(list(reversed(chain(length))))
        answers = [topo.olt_for(service(f"c{k}")) for k in range(1, length + 1)]
        assert answers == [OLT] * MAX_DEPTH + [None] * (length - MAX_DEPTH), length


def test_cycles_and_dead_ends_lead_nowhere() -> None:
    splitters = [
        network("loop-a", "x", "y", "out-a"),
        network("loop-b", "y", "x", "out-b"),  # x → y → x: no PON fibre on it
        network("self", "z", "z"),  # a splitter fed by its own output
        network("dangling", "nowhere", "out-d"),  # its input is no PON's and no splitter's output
        network("blind", None, "out-e"),  # no input at all
        NetworkSplitterView(id="bare"),  # no connectables
        network("ok", "feed", "out-f"),
    ]
    topo = index(splitters)
    for fibre in ("x", "y", "out-a", "out-b", "z", "out-d", "out-e", "nowhere", ""):
        assert topo.olt_for(service(fibre)) is None, fibre
    assert topo.olt_for(service("out-f")) is OLT


def test_a_cycle_above_a_pon_fibre_stops_at_the_pon() -> None:
    # feed is a PON fibre *and* an output of a splitter below it: the PON answers, the loop is never walked
    splitters = [network("top", "feed", "mid"), network("low", "mid", "feed", "out")]
    topo = index(splitters)
    assert [topo.olt_for(service(f)) for f in ("feed", "mid", "out")] == [OLT, OLT, OLT]


def test_the_last_splitter_listing_a_fibre_wins_and_drops_are_ignored() -> None:
    splitters = [
        network("first", "feed", "shared"),
        network("second", "nowhere", "shared"),  # listed later: the chain of "shared" goes through here
        network("drop", "feed", "via-drop", is_drop=True),  # a service splitter in the listing: not a hop
    ]
    topo = index(splitters)
    assert topo.olt_for(service("shared")) is None
    assert topo.olt_for(service("via-drop")) is None
    assert topo.olt_for(service("feed")) is OLT


def test_the_last_splitter_listing_a_fibre_wins_also_in_the_middle_of_a_chain() -> None:
    for near, far, answer in (("nowhere", "feed", OLT), ("feed", "nowhere", None)):
        splitters = [
            network("first", near, "mid"),
            network("second", far, "mid"),  # listed later: "mid" comes out of this one
            network("below", "mid", "out"),
        ]
        topo = index(splitters)
        assert topo.olt_for(service("out")) is answer
        assert topo.olt_for(service("mid")) is answer


def test_answers_do_not_depend_on_the_order_of_the_questions() -> None:
    # "c2" is both a service splitter's input (asked) and the input of the next network splitter (walked through)
    splitters = chain(MAX_DEPTH + 2)
    fibres = [f"c{k}" for k in range(1, MAX_DEPTH + 3)]
    forward = [index(splitters).olt_for(service(f)) for f in fibres]
    topo = index(splitters)
    backward = [topo.olt_for(service(f)) for f in reversed(fibres)]
    assert forward == list(reversed(backward))
    assert forward == [OLT] * MAX_DEPTH + [None, None]


def test_pages_fed_in_pieces_build_the_same_index() -> None:
    splitters = [*chain(5), network("side", "c2", "s1", None, "", "s2")]
    whole = index(splitters)
    builder = TopologyBuilder()
    builder.add_olts([OLT])
    builder.add_network_splitters(splitters[:3])
    builder.add_pons([PonView(id="pon", connectables=["feed"])])
    builder.add_network_splitters(splitters[3:])
    builder.add_slots([SLOT])
    pieces = builder.build()
    fibres = ["feed", *(f"c{k}" for k in range(1, 6)), "s1", "s2", ""]
    assert [pieces.olt_for(service(f)) for f in fibres] == [whole.olt_for(service(f)) for f in fibres]
    assert len(pieces) == len(whole) == 8  # feed, c1..c5, s1, s2: no entry for an empty output


def test_chains_through_non_ascii_fibre_ids_are_followed_page_after_page() -> None:
    # inputs and outputs are packed as UTF-8 page by page: multi-byte ids must come back whole, on either side
    # of an ASCII page
    builder = TopologyBuilder()
    builder.add_network_splitters([network("n1", "feed", "fibra-ção"), network("n2", "fibra-ção", "ñ-1")])
    builder.add_network_splitters([network("n3", "ñ-1", "plain"), network("n4", None, "dead")])
    builder.add_network_splitters([network("n5", "plain", "último", "ünd")])
    builder.add_pons([PonView(id="pon", connectables=["feed"])])
    builder.add_slots([SLOT])
    builder.add_olts([OLT])
    topo = builder.build()
    asked = ["feed", "fibra-ção", "ñ-1", "plain", "último", "ünd", "dead", "ñ", "fibra-cao"]
    assert [topo.olt_for(service(f)) for f in asked] == [OLT] * 6 + [None] * 3


FIBRES = ["a", "b", "c", "d", "e", "f", "g", "h", ""]
fibre = st.sampled_from(FIBRES)
maybe = st.one_of(st.none(), st.sampled_from(["o0", "o1", "s0", "s1", "s2", "gone"]))


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[list[PonView], list[SlotView], list[OltView], list[NetworkSplitterView], list[str | None]]:
    olts = [
        OltView(
            id=f"o{i}", ip=f"10.0.0.{i}", connectables=draw(st.lists(st.sampled_from(["s0", "s1", "s2"])))
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    slots = [
        SlotView(
            id=f"s{i}",
            olt=draw(maybe),
            parent=draw(maybe),
            connectables=draw(st.lists(st.sampled_from(["p0", "p1", "p2"]), max_size=2)),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    pons = [
        PonView(
            id=f"p{i}", slot=draw(maybe), parent=draw(maybe), connectables=draw(st.lists(fibre, max_size=2))
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    splitters: list[NetworkSplitterView] = []
    for i in range(draw(st.integers(0, 12))):
        connectables = draw(
            st.one_of(
                st.none(),
                st.builds(
                    Fibres,
                    input=st.lists(st.one_of(st.none(), fibre), max_size=2),
                    output=st.lists(st.one_of(st.none(), fibre), max_size=4),
                ),
            )
        )
        splitters.append(
            NetworkSplitterView(id=f"n{i}", is_drop=draw(st.booleans()), connectables=connectables)
        )
    length = draw(st.integers(0, MAX_DEPTH + 3))  # a long chain hanging off one of the fibres
    top = draw(fibre)
    links = [top, *(f"c{k}" for k in range(1, length + 1))]
    splitters += [network(f"c{k}", links[k - 1], links[k]) for k in range(1, length + 1)]
    if length and draw(st.booleans()):  # closed into a loop
        splitters.append(network("back", links[-1], draw(st.sampled_from(links))))
    splitters = draw(st.permutations(splitters))
    return pons, slots, olts, splitters, [*FIBRES, *links[1:], "unknown", None]


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_every_answer_is_the_walk_from_that_fibre(
    world: tuple[list[PonView], list[SlotView], list[OltView], list[NetworkSplitterView], list[str | None]],
) -> None:
    pons, slots, olts, splitters, questions = world
    topo = topology(pons=pons, slots=slots, olts=olts, network_splitters=splitters)
    expected = [walk(q, pons=pons, slots=slots, olts=olts, splitters=splitters) for q in questions]
    for question, answer in zip(questions, expected, strict=True):
        assert topo.olt_for(service(question)) is answer, question
    page = [None, *(service(q) for q in questions), ServiceSplitterView(id="no-input")]
    assert all(got is want for got, want in zip(topo.olts_for(page), [None, *expected, None], strict=True))
    # built with a key most fibres share, the chains are resolved on strings all the same
    builder = TopologyBuilder(key=lambda f: len(f) % 2)
    builder.add_network_splitters(splitters)
    builder.add_pons(pons)
    builder.add_slots(slots)
    builder.add_olts(olts)
    shared = builder.build()
    assert all(got is want for got, want in zip(shared.olts_for(page), [None, *expected, None], strict=True))


OLT2 = OltView(id="olt2", name="OLT-2", ip="10.0.0.2")


def crafted(fibre: str) -> int:
    """A 64-bit "hash" most fibres share: ``x…`` fibres one value, ``y…`` another, the rest their length."""
    return {"x": -(2**63), "y": 2**63 - 1}.get(fibre[:1], len(fibre))


def test_fibres_sharing_a_hash_are_told_apart_by_their_string() -> None:
    olt_of_fibre: dict[str, OltView | None] = {
        "x1": OLT,
        "x2": OLT2,
        "x3": None,  # a dead end: not held, so "x3" finds "x1", "x2" and no more
        "x4": OLT,
        "y1": OLT2,
        "ab": OLT,
        "cd": OLT2,
        "ééé": OLT2,  # multi-byte UTF-8, same length (3) as "abc", not held
        "a": OLT,
    }
    topo = Topology.of(olt_of_fibre, key=crafted)
    assert len(topo) == 8
    questions = ["x1", "x2", "x3", "x4", "x5", "y1", "y2", "ab", "cd", "ef", "ééé", "abc", "a", "b", "", "é"]
    expected = [olt_of_fibre.get(q) for q in questions]
    assert topo.olts_of(questions) == expected
    assert [topo.olts_of([q])[0] for q in questions] == expected  # alone, the first of its hash or not
    assert topo.olts_of(list(reversed(questions))) == list(reversed(expected))
    assert all(got is want for got, want in zip(topo.olts_of(questions), expected, strict=True))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abé\x00", max_size=4),
        st.sampled_from([OLT, OLT2, None]),
        max_size=12,
    ),
    st.lists(st.text(alphabet="abé\x00", max_size=4), max_size=12),
    st.integers(1, 4),
)
def test_a_crafted_index_answers_as_the_mapping_does(
    olt_of_fibre: dict[str, OltView | None], asked: list[str], spread: int
) -> None:
    # few hash values (len % spread), so most fibres share one; asked fibres both held and not
    topo = Topology.of(olt_of_fibre, key=lambda f: len(f) % spread)
    questions = [*asked, *olt_of_fibre]
    expected = [olt_of_fibre.get(q) if q else None for q in questions]
    assert topo.olts_of(questions) == expected
    assert len(topo) == sum(1 for f, o in olt_of_fibre.items() if f and o is not None)


def test_an_empty_index_answers_none() -> None:
    topo = Topology.of({})
    assert len(topo) == 0
    assert topo.olts_of(["a", ""]) == [None, None]
    assert topo.olts_for([service("a"), None]) == [None, None]
    assert topo.olts_of([]) == []
