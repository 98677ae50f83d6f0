"""Which OLT feeds a service splitter: a pure index over PONs, slots, OLTs and network splitters.

OZmap has no endpoint for a box's "transmitter" (ozmap.md F11). It is derived from the fibre graph:
the splitter's first input fibre is either listed in a PON's ``connectables`` (found) or in the ``output`` of a
network splitter (``isDrop`` false), whose own first input fibre is followed in turn, up to
:data:`MAX_DEPTH` hops. The PON's slot and the slot's OLT are read from both directions of the chain
(``OLT.connectables`` = slot ids, ``Slot.connectables`` = PON ids) with the children's ``olt``/``slot``/``parent``
as a fallback, because instances fill one or the other.

Built once per stream from four full listings; answers are pure dictionary walks.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from reconciler.connectors.ozmap.views import OltView, PonView, ServiceSplitterView, SlotView, SplitterView

#: Longest chain of network splitters followed before giving up (guards against cycles in bad data).
MAX_DEPTH = 8


class ServiceSummary(msgspec.Struct, frozen=True, gc=False):
    """A box's service splitters: how many, their summed outputs, and the first by (name, id)."""

    count: int = 0
    ports: int = 0
    first: ServiceSplitterView | None = None


def summarize(items: Sequence[ServiceSplitterView]) -> ServiceSummary:
    """Summarise one box's service splitters."""
    if len(items) == 1:  # the common case, kept cheap: this runs once per box
        only = items[0]
        return ServiceSummary(1, only.ratio.output if only.ratio is not None else 0, only)
    if not items:
        return ServiceSummary()
    first = min(items, key=splitter_order)
    ports = sum(s.ratio.output for s in items if s.ratio is not None)
    return ServiceSummary(len(items), ports, first)


def splitter_order(splitter: ServiceSplitterView) -> tuple[str, str]:
    return (splitter.name or "", splitter.id)


def first_input(splitter: SplitterView | ServiceSplitterView) -> str | None:
    """The fibre entering the splitter's first input, if any."""
    if splitter.connectables is None or not splitter.connectables.input:
        return None
    return splitter.connectables.input[0]


class Topology:
    """The fibre → PON → slot → OLT index. Answers are memoised per fibre (PON fibres are resolved up front)."""

    def __init__(
        self,
        *,
        pons: Sequence[PonView],
        slots: Sequence[SlotView],
        olts: Sequence[OltView],
        network_splitters: Sequence[SplitterView],
    ) -> None:
        self._splitter_of_fibre: dict[str, SplitterView] = {
            f: s
            for s in network_splitters
            if not s.is_drop and s.connectables is not None
            for f in s.connectables.output
            if f
        }
        by_id = {o.id: o for o in olts}
        slot_of_pon: dict[str, str] = {p.id: p.slot or p.parent or "" for p in pons}
        for slot in slots:
            slot_of_pon.update((pon, slot.id) for pon in slot.connectables if pon)
        olt_of_slot: dict[str, str] = {s.id: (s.olt or s.parent or "") for s in slots}
        for olt in olts:
            olt_of_slot.update((slot, olt.id) for slot in olt.connectables if slot)
        #: fibre → the OLT it leads to (None = known dead end); seeded with every PON fibre
        self._olt_of_fibre: dict[str, OltView | None] = {}
        for pon in pons:
            olt_of_pon = by_id.get(olt_of_slot.get(slot_of_pon[pon.id], ""))
            self._olt_of_fibre.update((f, olt_of_pon) for f in pon.connectables if f)

    def olt_for(self, splitter: ServiceSplitterView | None) -> OltView | None:
        """The OLT feeding ``splitter``, or None when the chain is broken or too long."""
        if splitter is None:
            return None
        fibre = first_input(splitter)
        if fibre is None:
            return None
        try:
            return self._olt_of_fibre[fibre]
        except KeyError:
            pass
        found = self._trace(fibre)
        self._olt_of_fibre[fibre] = found
        return found

    def _trace(self, fibre: str) -> OltView | None:
        """Walk up through network splitters until a PON fibre (memoised) is reached."""
        seen = {fibre}
        for _ in range(MAX_DEPTH):
            upstream = self._splitter_of_fibre.get(fibre)
            nxt = first_input(upstream) if upstream is not None else None
            if nxt is None or nxt in seen:
                return None
            if nxt in self._olt_of_fibre:
                return self._olt_of_fibre[nxt]
            seen.add(nxt)
            fibre = nxt
        return None
